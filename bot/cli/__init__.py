"""The operator's command line: ``python -m bot <command>``.

``run`` (the default) lives in ``bot/__main__.py``; every other command has a handler here
that takes the parsed arguments and returns the exit code. Handlers import their modules
when called, so ``python -m bot --help`` stays quick and a command pays only for itself.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from bot.cli.errors import EXIT_CONFIG, EXIT_FAILED, CliError
from bot.numbers import too_long

log = logging.getLogger(__name__)

__all__ = ["build_parser", "dispatch", "program_name"]

PROG = "python -m bot"

# One paragraph, no line breaks of its own: argparse wraps it to the terminal's width.
_CONVERSATIONS_NOTE = (
    "These commands read the files in ECHO_DATA_DIR (default ./data) without taking the "
    "folder's lock, so they work while Echo runs. A conversation active in a running bot shows "
    "as of its last save: the bot saves it once it is idle (ECHO_IDLE_SECONDS), on /save, and "
    "when it stops."
)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``echo: ...``) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"echo: {message} (see '{self.prog} --help')\n")


def finite_float(text: str) -> float:
    """A number option: ``inf`` and ``nan`` parse as floats, but no wait or age is infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    why = too_long(value, "seconds")  # every such option is in seconds
    if why is not None:
        raise argparse.ArgumentTypeError(why)
    return value


def _handler(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        import importlib

        function: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), name
        )
        return function(args)

    return call


def program_name(argv0: str) -> str:
    """How the operator started us, for usage lines: ``echo-bot`` or ``python -m bot``."""
    name = os.path.basename(argv0)
    return PROG if name in ("__main__.py", "", "-c") else name


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Echo: a Discord bot with built-in conversation memory.",
        epilog=f"With no command, Echo runs. '{prog} COMMAND --help' tells more about each.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser(
        "run",
        help="run the bot (the default)",
        description="Run the bot. Needs DISCORD_TOKEN (in .env or the environment).",
    )

    sync = commands.add_parser(
        "sync",
        help="sync the slash commands with Discord",
        description="Log in with DISCORD_TOKEN and sync Echo's slash commands with Discord: "
        "to one server with --guild (they appear at once), else globally (Discord may take "
        "up to an hour to show them everywhere). Running Echo already syncs them to "
        "DEV_GUILD_ID, and globally when they changed.",
    )
    sync.add_argument(
        "--guild", metavar="ID", help="the server (guild) id to sync to; default: global"
    )
    sync.set_defaults(handler=_handler("bot.cli.sync", "sync_command"))

    conversations = commands.add_parser(
        "conversations",
        help="list, show or export recorded conversations",
        description="Look at the conversations Echo recorded.",
        epilog=_CONVERSATIONS_NOTE,
    )
    actions = conversations.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list conversations, newest first",
        description="List the recorded conversations, newest first: thread id, server, "
        "requester, created, last updated, message count and the start of the summary.",
        epilog=_CONVERSATIONS_NOTE,
    )
    listing.add_argument("--guild", metavar="ID", help="only this server's (guild's)")
    listing.add_argument(
        "--json", action="store_true", help="a JSON array (full summaries) for scripts"
    )
    listing.set_defaults(handler=_handler("bot.cli.conversations", "list_command"))

    show = actions.add_parser(
        "show",
        help="show a conversation as a readable transcript",
        description="Show a conversation as a transcript: who said what and when, with "
        "Echo's thinking and tool calls set apart. Times are UTC.",
        epilog=_CONVERSATIONS_NOTE,
    )
    show.add_argument("thread_id", metavar="THREAD_ID", help="the conversation's thread id")
    show.add_argument(
        "--full", action="store_true", help="show long tool results and arguments in full"
    )
    show.set_defaults(handler=_handler("bot.cli.conversations", "show_command"))

    export = actions.add_parser(
        "export",
        help="write a conversation's JSON",
        description="Write a conversation's JSON file, exactly as stored, to stdout or a file.",
        epilog=_CONVERSATIONS_NOTE,
    )
    export.add_argument("thread_id", metavar="THREAD_ID", help="the conversation's thread id")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of stdout ('-': stdout)"
    )
    export.add_argument("-f", "--force", action="store_true", help="overwrite FILE if it exists")
    export.set_defaults(handler=_handler("bot.cli.conversations", "export_command"))

    memories = commands.add_parser(
        "memories",
        help="generate, list, show or search long-term memories",
        description="Long-term memories: one per conversation that has been idle for "
        "ECHO_MEMORY_INACTIVITY_SECONDS (default 2 h), made by a memory run.",
    )
    memory_actions = memories.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = memory_actions.add_parser(
        "generate",
        help="distil every eligible conversation into a memory now",
        description="Distil every eligible conversation (idle longer than "
        "ECHO_MEMORY_INACTIVITY_SECONDS, with no memory or a memory older than it) into a "
        "memory, with the configured model or extractively offline. Shows progress, then the "
        "counts. Opens the data folder as the bot does: stop the bot first, or use "
        "/memory generate in Discord.",
    )
    generate.add_argument("--guild", metavar="ID", help="only this server's conversations")
    generate.add_argument(
        "--idle-seconds",
        metavar="N",
        type=finite_float,
        help="treat conversations idle for N seconds as eligible (default: the setting)",
    )
    generate.add_argument(
        "--enqueue",
        action="store_true",
        help="ECHO_STORE=redis: only queue the batch for the memory workers (python -m bot "
        "worker), print its id, and exit",
    )
    generate.add_argument(
        "--wait",
        action="store_true",
        help="ECHO_STORE=redis: queue the batch, wait until a worker has done it, show the counts",
    )
    generate.set_defaults(handler=_handler("bot.cli.memories", "generate_command"))
    memory_list = memory_actions.add_parser(
        "list",
        help="list memories, newest conversation first",
        description="List the memories: thread, server, date, facts, generator, summary.",
    )
    memory_list.add_argument("--guild", metavar="ID", help="only this server's")
    memory_list.add_argument("--json", action="store_true", help="the records as a JSON array")
    memory_list.set_defaults(handler=_handler("bot.cli.memories", "list_command"))
    memory_show = memory_actions.add_parser(
        "show",
        help="show one conversation's memory",
        description="Show the memory of one conversation: summary, topics, facts (and whom "
        "they are about), decisions, action items and open questions.",
    )
    memory_show.add_argument("thread_id", metavar="THREAD_ID", help="the conversation's thread id")
    memory_show.add_argument("--json", action="store_true", help="the record as stored")
    memory_show.set_defaults(handler=_handler("bot.cli.memories", "show_command"))

    search = memory_actions.add_parser(
        "search",
        help="search one server's conversations and memories",
        description="Rank one server's conversations by how well they and their memories "
        "match QUERY (SQLite FTS5, BM25). QUERY '-' reads one query per line from standard "
        "input and answers each on its own line. Never returns another server's conversations.",
    )
    search.add_argument("--guild", metavar="ID", required=True, help="the server to search")
    search.add_argument("--limit", metavar="K", type=int, default=5, help="results per query (5)")
    search.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per query per line: {"query": ..., "results": [...]}',
    )
    search.add_argument("query", metavar="QUERY", help="words to look for, or - for stdin")
    search.set_defaults(handler=_handler("bot.cli.memories", "search_command"))

    store = commands.add_parser(
        "store",
        help="move conversations and memories between JSON files and Redis",
        description="Work on the store as a whole.",
    )
    store_actions = store.add_subparsers(dest="action", metavar="ACTION", required=True)
    migrate = store_actions.add_parser(
        "migrate",
        help="copy every conversation and memory from one store to the other",
        description="Copy every conversation and memory from one store to the other, with a "
        "progress bar and the counts. The source is the truth: what the target holds in another "
        "version is replaced, what it holds as it is is left alone, so running it again copies "
        "only what changed. Nothing is deleted on either side. JSON: ECHO_DATA_DIR; Redis: "
        "REDIS_URL and ECHO_REDIS_PREFIX. Stop the bot (every process) first. Exit code 1 if "
        "anything could not be read or copied.",
    )
    for flag in ("--from", "--to"):
        migrate.add_argument(
            flag,
            dest="source" if flag == "--from" else "target",
            choices=("json", "redis"),
            required=True,
            help=f"the store to copy {flag.removeprefix('--')}",
        )
    migrate.add_argument("--data-dir", metavar="DIR", help="the JSON folder (ECHO_DATA_DIR)")
    migrate.add_argument("--redis-url", metavar="URL", help="the Redis server (REDIS_URL)")
    migrate.add_argument(
        "--prefix", dest="redis_prefix", metavar="PREFIX", help="the key prefix (ECHO_REDIS_PREFIX)"
    )
    migrate.add_argument("--guild", metavar="ID", help="only this server's (guild's) data")
    migrate.add_argument(
        "--redis-wait",
        metavar="SECONDS",
        type=finite_float,
        default=5.0,
        help="how long to keep trying an unreachable Redis before giving up (5)",
    )
    migrate.add_argument("--json", action="store_true", help="the report as JSON for scripts")
    migrate.set_defaults(handler=_handler("bot.cli.store", "migrate_command"))

    worker = commands.add_parser(
        "worker",
        help="make memories from the batches bots queue on Redis (ECHO_STORE=redis)",
        description="Take memory batches from the Redis queue and distil their conversations, "
        "until SIGTERM or Ctrl-C, logging one line per batch. Run any number, anywhere that "
        "reaches REDIS_URL. A batch whose worker died is taken over by another after "
        "--claim-after seconds of silence; what the dead worker finished is not made again.",
    )
    worker.add_argument(
        "--claim-after",
        metavar="SECONDS",
        type=finite_float,
        help="take over a batch whose worker has been silent this long (60)",
    )
    worker.add_argument(
        "--once",
        action="store_true",
        help="process the batches waiting now, then exit (for cron and tests)",
    )
    worker.set_defaults(handler=_handler("bot.cli.worker", "worker_command"))

    chat = commands.add_parser(
        "chat",
        help="talk with Echo in this terminal (no Discord needed)",
        description="Talk with Echo in the terminal: the same model, tools and memory as the "
        "bot, recorded as a conversation in a local server (guild 0 unless --guild). Works "
        "with no .env at all, using the offline echo model. Type /help in the chat for its "
        "commands; /quit, Ctrl-D or Ctrl-C ends it and saves the conversation.",
    )
    chat.add_argument(
        "--guild", metavar="ID", default="0", help="the local server id to record under (0)"
    )
    chat.add_argument(
        "--user",
        metavar="ID",
        help="your user id in the record (default: derived from your login name)",
    )
    chat.add_argument("--name", help="your name in the record (default: your login name)")
    chat.add_argument(
        "--thinking",
        action="store_true",
        help="show the model's reasoning as it streams (also ECHO_SHOW_THINKING=true)",
    )
    chat.set_defaults(handler=_handler("bot.cli.chat", "chat_command"))
    return parser


def dispatch(args: argparse.Namespace) -> int:
    """Run a command other than ``run``: errors become one line and an exit code."""
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"echo: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        # `... | head`: the reader left; say nothing more, and keep Python quiet at exit too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, the traceback at DEBUG
        log.debug("the command failed", exc_info=True)
        why = _one_line(f"{type(exc).__name__}: {exc}")
        print(f"echo: {args.command} failed: {why}", file=sys.stderr)
        return EXIT_FAILED


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
