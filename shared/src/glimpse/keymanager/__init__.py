"""Talking to the key manager (Barbican) and to Keystone on behalf of key cleanups.

Direct REST on httpx rather than castellan: castellan's Barbican backend is built on blocking
python-barbicanclient and keystoneauth sessions, and needs only two calls here (delete a secret;
create, use and delete a trust).
"""
