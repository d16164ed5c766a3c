"""knscale: the single CLI front door.

`knscale serve | lint | translate | reconcile | certs | register | simulate`.
"""

__version__ = "0.1.0"
