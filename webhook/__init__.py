"""FastAPI mutating/validating admission webhook: AdmissionReview in, RFC 6902 ops / findings out."""
