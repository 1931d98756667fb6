"""The pure core: the topology model, the pipeline and the flow-table plan, traffic
engineering, protection, reconciliation, meters and the read-only view.

Plain Python, networkx, numpy and scipy; time is always passed in.  Nothing here imports
Ryu, oslo, eventlet, sockets, Mininet or the other two layers (tests/test_layers.py
checks it), so all of it is unit-tested in milliseconds.
"""
