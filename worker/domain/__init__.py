"""The seed's checkout rules, pure: imports only `schemas` and `worker.errors`."""
