"""What the benchmark ran on: the machine and every version that matters."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
from pathlib import Path
from typing import Any

from bench import floors, targets


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def package_versions(names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


async def server_versions() -> dict[str, str]:
    found: dict[str, str] = {"sqlite": sqlite3.sqlite_version}
    try:
        from redis.asyncio import Redis  # noqa: PLC0415 (an optional extra)

        client = Redis.from_url(targets.REDIS_URL)
        try:
            found["redis-server"] = (await client.info("server"))["redis_version"]
        finally:
            await client.aclose()
    except Exception as exc:
        found["redis-server"] = f"unavailable ({type(exc).__name__})"
    try:
        import asyncpg  # noqa: PLC0415

        conn = await asyncpg.connect(targets.POSTGRES_URL)
        try:
            found["postgresql"] = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    except Exception as exc:
        found["postgresql"] = f"unavailable ({type(exc).__name__})"
    try:
        conn2 = await floors.mysql_connect(targets.MYSQL_URL)
        try:
            async with conn2.cursor() as cur:
                await cur.execute("SELECT VERSION()")
                found["mariadb"] = (await cur.fetchone())[0]
        finally:
            conn2.close()
    except Exception as exc:
        found["mariadb"] = f"unavailable ({type(exc).__name__})"
    return found


async def versions() -> dict[str, str]:
    names = ["sessionstore", "pydantic", "redis", "sqlalchemy", "asyncpg", "asyncmy"]
    return package_versions(names) | await server_versions()
