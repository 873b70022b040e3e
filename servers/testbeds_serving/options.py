"""What a suite server was asked to do: transport, address, recording, token, evaluator face."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@dataclass(frozen=True)
class ServeOptions:
    """Parsed command-line options, handed to each suite's `build(options)`.

    Attributes:
        transport: "stdio" (default; the client spawns the server) or "http" (streamable HTTP).
        host, port: where the HTTP transport listens; 127.0.0.1 keeps it off the network.
        record: SQLite transcript store to record every tool call into, or None.
        token: bearer token HTTP clients must send; ignored (with a warning) on stdio.
        evaluator: expose evaluator resources (ground truth, grades) to clients.
        record_run_id: attach recorded episodes to this run (default `TESTBEDS_RUN_ID` or a new run).
        record_model: the recorded run's model (default `TESTBEDS_MODEL` or "mcp-client").
        log_level: level of the server's stderr log.
    """

    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    record: Path | None = None
    token: str | None = field(default=None, repr=False)
    evaluator: bool = False
    record_run_id: str | None = None
    record_model: str | None = None
    log_level: LogLevel = "WARNING"

    @property
    def base_url(self) -> str:
        """`http://host:port`, with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The MCP endpoint clients connect to over HTTP."""
        return f"{self.base_url}/mcp"
