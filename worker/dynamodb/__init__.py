"""The DynamoDB adapter (the only boto3/botocore user): the session store, its item
layout and conditions, tables, clients. Imports `schemas`, `worker.domain`,
`worker.observability` and the kernel."""
