"""``agent-assist users | score | report``: people, scorecards and statistics from the store.

These read and write the same SQLite file as the server (WAL mode lets them run beside a
running server), so a supervisor can add an agent or print a report without a browser.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from agent_assist.config import Config
from agent_assist.core.scoring import CallScore, score_to_json
from agent_assist.errors import RequestError
from agent_assist.store.base import Store
from agent_assist.store.choice import open_store
from agent_assist.supervision.accounts import ROLES, Authenticator
from agent_assist.supervision.pricing import load_price_table
from agent_assist.supervision.review import Supervision
from agent_assist.supervision.statistics import agent_stats, stats_csv, stats_json, stats_text


def add_supervisor_commands(sub: Any) -> None:
    u = sub.add_parser("users", help="add users, print sign-in links and API tokens")
    usub = u.add_subparsers(dest="action", required=True)
    add = usub.add_parser("add", help="add (or update) a user")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password", action="store_true", help="ask for a password to set")
    link = usub.add_parser("link", help="print a one-time sign-in link for a user")
    link.add_argument("name")
    link.add_argument("--minutes", type=int, help="valid for (default: [auth] link_minutes)")
    link.add_argument("--base", help="server URL (default: from config)")
    token = usub.add_parser("token", help="print a new API token (for sources, scripts)")
    token.add_argument("name")
    toks = usub.add_parser("tokens", help="list a user's tokens (id, kind, dates, state)")
    toks.add_argument("name")
    rev = usub.add_parser("revoke", help="revoke one token by the id `users tokens` prints")
    rev.add_argument("token_id")
    usub.add_parser("purge", help="delete expired and spent tokens")
    usub.add_parser("list", help="list users")
    dis = usub.add_parser("disable", help="disable a user and revoke their tokens")
    dis.add_argument("name")
    s = sub.add_parser("score", help="print a call's scorecard")
    s.add_argument("call_id")
    s.add_argument("--json", action="store_true")
    r = sub.add_parser("report", help="print per-agent statistics")
    r.add_argument("--agent", help="one agent (default: all)")
    r.add_argument("--since", default="", help="calls started on or after (YYYY-MM-DD)")
    r.add_argument("--until", default="", help="calls started before (YYYY-MM-DD)")
    r.add_argument("--format", choices=["text", "json", "csv"], default="text")
    r.add_argument(
        "--table", choices=["agents", "lines", "warnings"], default="agents", help="CSV table"
    )


def run_supervisor_command(config: Config, args: argparse.Namespace) -> int:
    store = open_store(config)
    try:
        if args.command == "users":
            return _users(config, store, args)
        sup = Supervision(store, config)
        if args.command == "score":
            score = sup.score(args.call_id)
            if args.json:
                print(json.dumps(score_to_json(score), ensure_ascii=False, indent=2))
            else:
                print(format_score(score, store.call_agent(args.call_id)))
            return 0
        stats = agent_stats(sup, load_price_table(config), args.agent, args.since, args.until)
        if args.format == "json":
            print(json.dumps(stats_json(stats), ensure_ascii=False, indent=2))
        elif args.format == "csv":
            sys.stdout.write(stats_csv(stats, args.table))
        else:
            sys.stdout.write(stats_text(stats))
        return 0
    finally:
        store.close()


def _users(config: Config, store: Store, args: argparse.Namespace) -> int:
    auth = Authenticator(store, config.auth.session_hours, config.auth.link_minutes)
    if args.action == "list":
        for row in store.list_users():
            state = " (disabled)" if row.disabled else ""
            pw = " password" if row.password else ""
            print(f"{row.name:<24} {row.role:<10}{pw}{state}")
        return 0
    if args.action == "add":
        password = None
        if args.password:
            password = getpass.getpass(f"password for {args.name}: ")
            if len(password) < 8:
                raise RequestError(
                    "a password needs at least 8 characters", code="user.weak_password"
                )
        user = auth.add_user(args.name, args.role, password)
        print(f"user {user.name} ({user.role}) saved")
        return 0
    if args.action == "disable":
        if not store.disable_user(args.name):
            raise RequestError(f"no such user {args.name!r}", code="user.unknown")
        print(f"user {args.name} disabled; their sessions and tokens are revoked")
        return 0
    if args.action == "token":
        print(auth.api_token(args.name))
        return 0
    if args.action in ("tokens", "revoke", "purge"):
        return _tokens(store, args, auth.now_iso())
    base = args.base or f"http://{config.server.host}:{config.server.port}"
    print(f"{base.rstrip('/')}/login?token={auth.signin_token(args.name, args.minutes)}")
    return 0


def _tokens(store: Store, args: argparse.Namespace, now: str) -> int:
    """Tokens are stored as hashes: the id is the start of the hash (never the token)."""
    if args.action == "purge":
        print(f"{store.purge_tokens(now)} expired or spent token(s) deleted")
        return 0
    if args.action == "revoke":
        if len(args.token_id) < 8:
            raise RequestError("give at least 8 characters of the token id", code="token.unknown")
        if store.delete_tokens_by_prefix(args.token_id) != 1:
            raise RequestError(f"no single token with id {args.token_id!r}", code="token.unknown")
        print(f"token {args.token_id} revoked (open connections close within seconds)")
        return 0
    if store.get_user(args.name) is None:
        raise RequestError(f"no such user {args.name!r}", code="user.unknown")
    for token_id, kind, created, expires, used in store.list_tokens(args.name):
        live = "spent" if used else "expired" if expires and expires <= now else "live"
        print(f"{token_id}  {kind:<8} created {created}  expires {expires or 'never':<20} {live}")
    return 0


def format_score(score: CallScore, agent: str | None) -> str:
    def pts(fraction: float | None, weight: float) -> str:
        return "   -  " if fraction is None else f"{fraction * weight:4.1f}/{weight:<3.0f}"

    total = "-" if score.total is None else f"{score.total:.1f}"
    auto = "-" if score.auto_total is None else f"{score.auto_total:.1f}"
    head = f"call {score.call_id}" + (f" (agent {agent})" if agent else "")
    lines = [f"{head}: {total} / 100 (automatic {auto})" + ("  FAILED" if score.failed else "")]
    for item in score.items:
        mark = "!" if item.breached else " "
        lines.append(f" {mark}{item.title:<28} {pts(item.final, item.weight)}  {item.summary}")
        if item.override is not None:
            o = item.override
            lines.append(
                f"   {'':<28} override by {o.by}: {pts(o.score, item.weight)} "
                f"(auto {pts(item.auto, item.weight).strip()}) because {o.reason}"
            )
        for m in item.moments[:4]:
            quote = f" «{m.quote}»" if m.quote else ""
            lines.append(f"   {'':<28} {m.t_ms / 1000:6.1f}s {m.speaker:<8} {m.note}{quote}")
    return "\n".join(lines)
