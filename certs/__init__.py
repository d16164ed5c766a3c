"""CA and serving certificates, caBundle, rotation-aware TLS contexts (cryptography only)."""
