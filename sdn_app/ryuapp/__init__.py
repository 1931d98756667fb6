"""The Ryu layer: OpenFlow event handlers, per-switch sessions, the OpenFlow codec, REST
and the oslo options.  It turns events into calls on the core and the core's plans into
messages, and holds no forwarding logic of its own.

Nothing is imported here: ``compat`` is loaded from a .pth file at interpreter start,
before most of sys.path exists.
"""
