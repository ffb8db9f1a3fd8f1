"""`checkout bench`: workloads through real workers beside the same work in process."""
