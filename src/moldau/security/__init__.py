"""Security: who a connection is (TLS client certificates, SASL) and what it may do (ACLs,
quotas). Everything here is synchronous and does no I/O; the runtime wraps sockets in TLS
(runtime/tls.py) and hands the core what it learned (the listener, the client certificate)."""
