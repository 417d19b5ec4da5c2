"""The domain: deciding how to answer a worker, conversations and 人次, routing to lawyers (no Flask)."""
