"""Reading the result-event stream (plain and through consumer groups); imports only
`schemas` and the kernel."""
