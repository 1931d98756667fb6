"""The lab: the real stack under emulation (ryu-manager, Open vSwitch, Mininet), VR and
probe traffic, the VR scenario, plots and reports.  It uses the core and starts the Ryu
layer as a process; neither of them imports it."""
