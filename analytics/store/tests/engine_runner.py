"""Runs SQL statements on a fresh chdb data directory and reports each one's outcome as JSON.

Stands for "the same SQL on another ClickHouse version": the tests start it under the
interpreter of an older chdb (whose bundled engine matches the oldest supported server), so it
imports nothing from the project, whose Django that interpreter lacks. Reads
{"path": ..., "statements": [...], "config": optional config file} on stdin; writes one JSON list, an entry per statement:
{"ok": true, "rows": [...]} or {"ok": false, "error": "..."}. It shows what one engine accepts
and returns; nothing about a server's network, replication or settings profiles.
"""

import json
import shutil
import sys


def _text(result) -> str:
    data = result.data() if hasattr(result, "data") else result
    if data is None:  # chdb 3 answers DDL with no data at all
        return ""
    return data.decode() if isinstance(data, bytes) else str(data)


def run(path: str, statements: list[str], config: str | None = None) -> list[dict]:
    import chdb

    shutil.rmtree(path, ignore_errors=True)
    conn = chdb.connect(f"{path}?config-file={config}" if config else path)
    outcomes = []
    try:
        for sql in statements:
            try:
                text = _text(conn.query(sql, "JSONEachRow"))
            except Exception as exc:  # every refusal is reported, not raised
                outcomes.append({"ok": False, "error": str(exc)})
                continue
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            outcomes.append({"ok": True, "rows": rows})
    finally:
        conn.close()
    return outcomes


if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(run(request["path"], request["statements"], request.get("config")), sys.stdout)
