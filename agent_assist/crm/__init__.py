"""Customer records from the CRM, behind one small protocol.

``CustomerDirectory`` is all the server sees: look a customer up by id. The embedded
default reads a TOML file (``data/crm/customers.toml`` unless configured) once at
start-up and answers from memory; an adapter for a real CRM implements the same
protocol. A broken file is refused with every problem listed by key path.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Protocol

from agent_assist.core.catalog import Catalog
from agent_assist.core.customer import CustomerContext, parse_customers
from agent_assist.errors import ConfigError

__all__ = ["CustomerDirectory", "FileCustomerDirectory"]


class CustomerDirectory(Protocol):
    def lookup(self, customer_id: str) -> CustomerContext | None: ...
    def ids(self) -> list[str]: ...


class FileCustomerDirectory:
    """Customers from a TOML data file, validated against the catalogue, held in memory."""

    def __init__(self, customers: dict[str, CustomerContext]) -> None:
        self._customers = customers

    @classmethod
    def load(cls, path: Path | None, catalog: Catalog) -> FileCustomerDirectory:
        if path is None:
            ref = resources.files("agent_assist") / "data" / "crm" / "customers.toml"
            text, source = ref.read_text(encoding="utf-8"), "crm/customers.toml"
        else:
            try:
                text, source = path.read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise ConfigError(str(path), [f"cannot read the customers file: {exc}"]) from exc
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [f"not valid TOML: {exc}"]) from exc
        return cls(parse_customers(doc, source, catalog))

    def lookup(self, customer_id: str) -> CustomerContext | None:
        return self._customers.get(customer_id)

    def ids(self) -> list[str]:
        return sorted(self._customers)
