"""remit served to other programs: as an MCP server (``remit mcp serve``).

>>> from remit.serve.mcp import RemitServer           # doctest: +SKIP
>>> RemitServer(Remit.load("remit.toml"), journal="remit.db").build().run("stdio")  # doctest: +SKIP
"""
