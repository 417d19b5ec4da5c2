"""Load benchmark of the real WeChat webhook, served by gunicorn as in production, over loopback.

    python bench/load_bench.py [--duration 60] [--concurrency 50,200] [--databases sqlite,postgresql]
                               [--workers N] [--threads T] [--aes] [--rate R] [--quick] [--profile DIR]

For each concurrency level the bare Flask baseline (`bench/bare_app.py`: one POST route answering
`success`) is served the same way and loaded the same way; then, for each database, a fresh database
(a SQLite file in WAL mode, or a PostgreSQL schema of its own) is migrated, the service is started with
`gunicorn -k gthread 'app:create_app()'`, and a closed loop of keep-alive connections posts signed
WeChat text messages (plain mode, or safe mode with --aes) from 10,000 distinct openids to `/wechat`.

The stream is cut into groups of --group openids (default max(1000, 5 x connections)) that each send
--messages (default 3) messages, round by round, before the next group starts; after the 10,000th openid
it wraps round. So each openid asks a question and follows up a few times, and every openid's messages
go one after the other (never two at once, as a person waits for the reply): the first opens a
consultation, the others join it. Questions are FAQ paraphrases the engine answers or
clarifies (no escalation to a lawyer, no menu, no worker-type choice), so every message must get a
passive reply and every openid that wrote must have exactly one open consultation (人次).

After a run the server is stopped and the database is read back: every accepted MsgId has exactly one
inbound row whose stored reply is the reply the HTTP response carried, one outbound bot reply each, one
worker per openid, one open consultation per openid holding all of its messages, nothing else. PASS or
FAIL is printed per check; non-200 responses, timeouts and connection errors are counted.

The load generator is this process: asyncio streams over raw keep-alive HTTP/1.1 (no client library),
request bytes built before the clock starts. Latency runs from writing the request to reading the whole
response (--rate: from the request's scheduled time, so queueing counts). The CPU used by the service's
workers, PostgreSQL, this client and everything else on the machine during the measured window is
printed too: the machine has 2 cores and may be shared.

Needs gunicorn (`pip install -e .[prod]`) and, for --profile, py-spy. Targets (the issue): at 200
connections on PostgreSQL, throughput >= 0.3 x the bare endpoint's and p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from wechatpy.crypto import WeChatCrypto  # noqa: E402

from models import INBOUND, OUTBOUND, Consultation, Message, Worker, make_engine  # noqa: E402
from models.schema import upgrade  # noqa: E402
from tests.wechat_helpers import AES_KEY, APPID, TOKEN, reply_content, signature, text_xml  # noqa: E402

HOST = "127.0.0.1"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
OPENIDS = 10_000
QUESTIONS = 64
WECHAT_PATIENCE_S = 5.0  # WeChat drops a push it has not been answered for in 5 s (and retries it)
# Status codes for requests that got no HTTP status.
TIMEOUT, CONN_ERROR = -1, -2
ENCRYPT_RE = re.compile(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", re.S)


# --------------------------------------------------------------------------------------------- messages


def pick_questions(n: int, seed: int) -> list[str]:
    """`n` FAQ paraphrases over every category that the engine answers or clarifies outright."""
    from bot.engine import ANSWER, CLARIFY, Engine

    engine = Engine.load()
    types = engine.kb.worker_types
    by_category: dict[str, list[str]] = defaultdict(list)
    for entry in engine.kb.faq:
        by_category[entry.category].extend(entry.paraphrases)
    rng = random.Random(seed)
    pools = [rng.sample(p, len(p)) for _, p in sorted(by_category.items())]
    picked: list[str] = []
    for text_ in itertools.chain.from_iterable(itertools.zip_longest(*pools)):
        if text_ is None or "]]>" in text_ or types.chosen(text_) is not None:
            continue
        decision = engine.decide(text_)
        if decision.action in (ANSWER, CLARIFY) and decision.reason not in ("empty", "menu"):
            picked.append(text_)
            if len(picked) == n:
                break
    return picked


@dataclass
class Plan:
    """The message stream: groups of `group` openids send `messages` messages each, round by round."""

    questions: list[str]
    openids: int = OPENIDS
    group: int = 1000
    messages: int = 3
    aes: bool = False
    msg_base: int = 0
    timestamp: int = 0
    built: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.msg_base = self.msg_base or random.randrange(10**17, 9 * 10**17)  # 64-bit, like WeChat's
        self.timestamp = self.timestamp or int(time.time())
        self._crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)

    def slot(self, i: int) -> tuple[int, int]:
        """(openid number, that openid's message number) of request i; never the same pair twice."""
        group = min(self.group, self.openids)
        block, offset = divmod(i, self.messages * group)
        n = block * group + offset % group
        return n % self.openids, offset // group + self.messages * (n // self.openids)

    def worker(self, i: int) -> int:
        return self.slot(i)[0]

    def openid(self, w: int) -> str:
        return f"oBench-{w:06d}-loadtest-xxxxx"  # 28 characters, like WeChat's

    def msg_id(self, i: int) -> int:
        return self.msg_base + i

    def question(self, i: int) -> str:
        w, round_ = self.slot(i)
        return self.questions[(w * 7 + round_ * 13) % len(self.questions)]

    def build(self, count: int) -> None:
        """Build the first `count` requests before the clock starts."""
        self.built.extend(self._make(i) for i in range(len(self.built), count))

    def request(self, i: int) -> bytes:
        return self.built[i] if i < len(self.built) else self._make(i)

    def _make(self, i: int) -> bytes:
        ts = str(self.timestamp)
        nonce = f"{(i * 2654435761) % 10**9:09d}"
        body = text_xml(
            self.question(i),
            openid=self.openid(self.worker(i)),
            msg_id=self.msg_id(i),
            create_time=self.timestamp,
        )
        query = f"signature={signature(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"
        if self.aes:
            encrypt = ENCRYPT_RE.search(self._crypto.encrypt_message(body, nonce, ts)).group(1)
            body = (
                "<xml><ToUserName><![CDATA[gh_official]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
            query += f"&encrypt_type=aes&msg_signature={signature(TOKEN, ts, nonce, encrypt)}"
        raw = body.encode("utf-8")
        head = (
            f"POST /wechat?{query} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        )
        return head.encode("ascii") + raw


# ------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A gunicorn master serving `target` on a free loopback port, with its log file."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_server(target: str, env_extra: dict[str, str], args: argparse.Namespace, scratch: Path) -> Server:
    """`gunicorn -w N -k gthread --threads T target`, waiting until every worker has loaded the app."""
    port = free_port()
    ready = Path(tempfile.mkdtemp(prefix="ready-", dir=scratch))
    conf = ready / "gunicorn_conf.py"
    conf.write_text(
        "import pathlib\n\n\ndef post_worker_init(worker):\n"
        f"    pathlib.Path({str(ready)!r}, f'ready.{{worker.pid}}').touch()\n"
    )
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(conf),
        "-w",
        str(args.workers),
        "-k",
        "gthread",
        "--threads",
        str(args.threads),
        "-b",
        f"{HOST}:{port}",
        "--timeout",
        "120",
        "--keep-alive",
        "75",
        "--log-level",
        "warning",
        *shlex.split(args.gunicorn_args),
        target,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "DATABASE_URL"))}
    env.update(env_extra, PYTHONUNBUFFERED="1")
    log = scratch / f"gunicorn-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, log)
    deadline = time.monotonic() + 300
    while len(list(ready.glob("ready.*"))) < args.workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"gunicorn did not start ({' '.join(cmd)}):\n{server.tail()}")
        time.sleep(0.2)
    return server


def app_env(url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APPID": APPID,
        "WECHAT_ENCODING_AES_KEY": AES_KEY,
        "WORKER_MESSAGES_PER_MINUTE": "0",  # every request comes from 10,000 openids at full speed
        "IP_REQUESTS_PER_MINUTE": "0",  # ... and from 127.0.0.1
        "SECRET_KEY": "load-bench",
    }


# ----------------------------------------------------------------------------------------------- database


@dataclass
class Database:
    kind: str
    url: str
    admin: str | None = None  # PostgreSQL: the URL without the schema, and the schema to drop afterwards
    schema: str | None = None

    def close(self, keep: bool) -> None:
        if self.schema and not keep:
            admin = make_engine(self.admin)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()


def fresh_database(kind: str, args: argparse.Namespace, scratch: Path) -> Database:
    """An empty, migrated database: the workers' own `upgrade` at start-up then has nothing to do."""
    if kind == "sqlite":
        db = Database(kind, f"sqlite:///{scratch / f'bench-{uuid.uuid4().hex[:8]}.db'}")
    elif kind == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(args.pg_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in args.pg_url else "?"
        # application_name lets the CPU meter find this run's backends in pg_stat_activity.
        url = f"{args.pg_url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
        db = Database(kind, url, args.pg_url, schema)
    else:
        raise SystemExit(f"unknown database {kind!r} (sqlite, postgresql)")
    engine = make_engine(db.url)
    try:
        upgrade(engine)
    except BaseException:
        db.close(keep=False)
        raise
    finally:
        engine.dispose()
    return db


# --------------------------------------------------------------------------------------------------- load


@dataclass
class Load:
    """What a load run saw: one record per request sent, plus CPU used during the measured window."""

    records: list[tuple[int, float, float, int]] = field(default_factory=list)  # (i, start, latency, status)
    bodies: dict[int, bytes] = field(default_factory=dict)
    duration: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    measured_from: float = 0.0
    measured_to: float = 0.0

    def measured(self) -> list[tuple[int, float, float, int]]:
        """Requests completed inside the measured window (after the warm-up)."""
        return [r for r in self.records if self.measured_from <= r[1] + r[2] <= self.measured_to]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        raise ConnectionError("response without Content-Length")
    length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
    body = await reader.readexactly(length) if length else b""
    return status, body, b"\r\nconnection: close" in lower


class CpuMeter:
    """CPU seconds used by the server's workers, this run's PostgreSQL backends (found by their
    application_name), this process and the whole machine; per process, only what it used between two
    samples counts (processes that come and go are left out)."""

    def __init__(self, server: Server, db: Database | None = None):
        self.server, self.db = server, db
        self._procs: dict[int, psutil.Process] = {}

    def _postgres(self) -> list[int]:
        if self.db is None or self.db.kind != "postgresql":
            return []
        engine = make_engine(self.db.admin)
        try:
            with engine.connect() as conn:
                return list(
                    conn.scalars(
                        text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                        {"n": self.db.schema},
                    )
                )
        finally:
            engine.dispose()

    def _used(self, pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                t = proc.cpu_times()
                out[pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    def sample(self) -> dict[str, dict[int, float] | float]:
        machine = psutil.cpu_times()
        me = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "server": self._used([p.pid for p in self.server.workers]),
            "postgres": self._used(self._postgres()),
            "client": me.ru_utime + me.ru_stime,
            "machine": machine.user + machine.nice + machine.system + machine.irq + machine.softirq,
        }

    @staticmethod
    def delta(before: dict, after: dict, seconds: float) -> dict[str, float]:
        out = {}
        for key, value in after.items():
            if isinstance(value, dict):
                used = sum(v - before[key][pid] for pid, v in value.items() if pid in before[key])
            else:
                used = value - before[key]
            out[key] = used / seconds
        return out


async def drive(
    port: int,
    plan: Plan,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    timeout: float,
    rate: float,
    keep_bodies: bool,
    meter: CpuMeter,
    on_measure: Callable[[], None] | None = None,
) -> Load:
    """`concurrency` keep-alive connections sending the plan's requests for warmup + duration seconds."""
    load = Load(duration=duration)
    counter = itertools.count()
    busy: dict[int, asyncio.Future] = {}  # openid -> its message in flight
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    load.measured_from, load.measured_to = start + warmup, start + warmup + duration
    end = load.measured_to

    async def connection() -> None:
        reader = writer = None
        while True:
            i = next(counter)
            w = plan.worker(i)
            while w in busy:  # this openid's previous message is still out: a person waits for the reply
                await busy[w]
            busy[w] = done = loop.create_future()
            due = start + i / rate if rate else time.perf_counter()
            if due >= end or time.perf_counter() >= end:
                del busy[w]
                done.set_result(None)
                break
            if due > time.perf_counter():
                await asyncio.sleep(due - time.perf_counter())
            request = plan.request(i)
            sent = time.perf_counter()
            body, status = b"", CONN_ERROR
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(request)
                async with asyncio.timeout(timeout):
                    status, body, close = await read_response(reader)
                if close:
                    writer.close()
                    reader = writer = None
            except TimeoutError:
                status = TIMEOUT
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                status = CONN_ERROR
            finally:
                finished = time.perf_counter()
                del busy[w]
                done.set_result(None)
            if status < 0 and writer is not None:
                writer.close()
                reader = writer = None
            begin = due if rate else sent
            load.records.append((i, begin, finished - begin, status))
            if keep_bodies and status == 200:
                load.bodies[i] = body
        if writer is not None:
            writer.close()

    async def measure() -> None:
        await asyncio.sleep(max(0.0, load.measured_from - time.perf_counter()))
        before = meter.sample()
        if on_measure:
            on_measure()
        await asyncio.sleep(max(0.0, load.measured_to - time.perf_counter()))
        after = meter.sample()
        load.cpu = meter.delta(before, after, duration)

    await asyncio.gather(measure(), *(connection() for _ in range(concurrency)))
    return load


def stats(load: Load, plan: Plan) -> dict[str, float]:
    done = load.measured()
    ok = sorted(r[2] for r in done if r[3] == 200)
    status = Counter(r[3] for r in load.records)
    out = {
        "requests": len(done),
        "rps": len([r for r in done if r[3] == 200]) / load.duration,
        "p50_ms": ok[len(ok) // 2] * 1000 if ok else math.nan,
        "p99_ms": ok[max(0, math.ceil(len(ok) * 0.99) - 1)] * 1000 if ok else math.nan,
        "max_ms": ok[-1] * 1000 if ok else math.nan,
        "mean_ms": sum(ok) / len(ok) * 1000 if ok else math.nan,
        "sent": len(load.records),
        "non200": sum(n for s, n in status.items() if s > 0 and s != 200),
        "timeouts": status[TIMEOUT],
        "conn_errors": status[CONN_ERROR],
        "over_5s": sum(1 for r in load.records if r[2] > WECHAT_PATIENCE_S),
        "openids": len({plan.worker(r[0]) for r in load.records}),
        "per_openid": max(Counter(plan.worker(r[0]) for r in load.records).values(), default=0),
    }
    out.update({f"cpu_{k}": v for k, v in load.cpu.items()})
    # The CPU the service's workers spent per answered request: unlike req/s, it hardly depends on how much
    # of the (shared) machine the server got.
    out["cpu_ms_per_req"] = out["cpu_server"] * 1000 / out["rps"] if out["rps"] and load.cpu else math.nan
    out["cpu_other"] = (
        max(0.0, load.cpu["machine"] - load.cpu["server"] - load.cpu["postgres"] - load.cpu["client"])
        if load.cpu
        else math.nan
    )
    out["status"] = {str(k): v for k, v in sorted(status.items())}
    return out


def run_load(
    server: Server,
    plan: Plan,
    concurrency: int,
    args,
    *,
    keep_bodies: bool,
    label: str,
    db: Database | None = None,
) -> Load:
    profilers: list[subprocess.Popen] = []

    def start_profilers() -> None:
        if not args.profile:
            return
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        for proc in server.workers:
            out = Path(args.profile) / f"{label}-{proc.pid}.txt"
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            cmd = [py_spy, "record", "-p", str(proc.pid), "-d", str(int(args.duration)), "-r", "200"]
            cmd += ["-f", "raw", "-o", str(out), "--nonblocking"]
            cmd += ["--gil"] if args.profile_mode == "gil" else []
            profilers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    load = runner(
        drive(
            server.port,
            plan,
            concurrency=concurrency,
            warmup=args.warmup,
            duration=args.duration,
            timeout=args.timeout,
            rate=args.rate,
            keep_bodies=keep_bodies,
            meter=CpuMeter(server, db),
            on_measure=start_profilers,
        )
    )
    for p in profilers:
        p.wait(timeout=args.duration + 60)
    return load


# --------------------------------------------------------------------------------------------- verifying


def verify(db: Database, plan: Plan, load: Load) -> list[tuple[bool, str]]:
    """Read the database back after the server stopped; (passed, what) per check."""
    checks: list[tuple[bool, str]] = []
    accepted: dict[str, str] = {}  # dedup_key -> the reply the HTTP response carried
    empty_200 = 0
    unknown: set[str] = set()  # no status, or a 5xx: the row may or may not be there
    refused: set[str] = set()  # a 4xx: nothing may be stored
    for i, _, _, status in load.records:
        key = f"msg|{plan.msg_id(i)}"
        if status == 200:
            body = load.bodies[i].decode("utf-8")
            reply = reply_content(body) if body.lstrip().startswith("<xml") else ""
            if reply:
                accepted[key] = reply
            else:
                empty_200 += 1
                unknown.add(key)
        elif 400 <= status < 500:
            refused.add(key)
        else:
            unknown.add(key)
    sent_keys = {f"msg|{plan.msg_id(i)}": plan.openid(plan.worker(i)) for i, *_ in load.records}

    engine = make_engine(db.url)
    with engine.connect() as conn:
        inbound = conn.execute(
            select(Message.dedup_key, Message.worker_id, Message.consultation_id, Message.reply).where(
                Message.direction == INBOUND
            )
        ).all()
        outbound = conn.execute(
            select(Message.dedup_key, Message.worker_id, Message.consultation_id, Message.content).where(
                Message.direction == OUTBOUND
            )
        ).all()
        workers = dict(conn.execute(select(Worker.id, Worker.openid)).all())
        consultations = conn.execute(
            select(Consultation.id, Consultation.worker_id, Consultation.closed_at)
        ).all()
        distinct_keys = conn.scalar(
            select(func.count(func.distinct(Message.dedup_key))).where(Message.direction == INBOUND)
        )
    engine.dispose()

    statuses = Counter(r[3] for r in load.records)
    bad = {k: v for k, v in statuses.items() if k != 200}
    checks.append(
        (not bad, f"every request answered 200 ({len(load.records)} sent; other outcomes {bad or 'none'})")
    )
    checks.append((empty_200 == 0, f"every 200 carried a non-empty passive reply ({empty_200} without)"))

    rows = {r.dedup_key: r for r in inbound}
    lost = [k for k in accepted if k not in rows]
    checks.append(
        (not lost, f"no accepted message lost: {len(accepted)} accepted MsgIds, {len(lost)} without a row")
    )
    foreign = [k for k in rows if k not in sent_keys]
    extra = [k for k in rows if k in sent_keys and k not in accepted]
    stray = [k for k in extra if k not in unknown]
    checks.append(
        (
            not foreign and not stray,
            f"nothing stored that was not sent and accepted: {len(inbound)} inbound rows = {len(accepted)} "
            f"accepted + {len(extra)} of {len(unknown)} unanswered ({len(foreign)} unknown keys, "
            f"{len(stray)} for refused requests)",
        )
    )
    checks.append(
        (
            distinct_keys == len(inbound) == len(rows),
            f"no MsgId stored twice ({len(inbound)} inbound rows, {distinct_keys} distinct MsgIds)",
        )
    )
    mismatched = [k for k, reply in accepted.items() if k in rows and rows[k].reply != reply]
    checks.append(
        (
            not mismatched,
            f"stored reply == the reply sent back, for every accepted MsgId ({len(mismatched)} differ)",
        )
    )
    replies = Counter(r.dedup_key for r in outbound)
    out_text = {r.dedup_key: r.content for r in outbound}
    bad_out = [
        k
        for k, r in rows.items()
        if r.reply and (replies[f"reply|{k}"] != 1 or out_text[f"reply|{k}"] != r.reply)
    ]
    orphan_out = [k for k in replies if k.removeprefix("reply|") not in rows]
    checks.append(
        (
            not bad_out and not orphan_out and len(outbound) == sum(1 for r in inbound if r.reply),
            f"one outbound bot reply per answered inbound message ({len(outbound)} outbound rows; "
            f"{len(bad_out)} missing or different, {len(orphan_out)} orphaned)",
        )
    )
    wrote = {sent_keys[k] for k in rows}
    accepted_openids = {sent_keys[k] for k in accepted}
    openids = Counter(workers.values())
    checks.append(
        (
            set(openids) == wrote and max(openids.values(), default=1) == 1 and accepted_openids <= wrote,
            f"one worker row per openid that wrote ({len(workers)} rows, {len(wrote)} openids with "
            f"stored messages, {len(accepted_openids)} with accepted ones)",
        )
    )
    by_worker = defaultdict(list)
    for c in consultations:
        by_worker[c.worker_id].append(c)
    one_each = all(len(v) == 1 and v[0].closed_at is None for v in by_worker.values())
    msg_workers = {r.worker_id for r in inbound}
    joined = all(
        len(by_worker.get(r.worker_id, ())) == 1 and r.consultation_id == by_worker[r.worker_id][0].id
        for r in list(inbound) + list(outbound)
    )
    checks.append(
        (
            one_each and joined and set(by_worker) == msg_workers and len(consultations) == len(wrote),
            f"consultations (人次) == openids who asked: {len(consultations)} consultations, {len(wrote)} "
            f"openids, {len(accepted_openids)} with an accepted question; one open consultation each: "
            f"{one_each}; every message in its worker's consultation: {joined}",
        )
    )
    return checks


# -------------------------------------------------------------------------------------------- profiling


def summarize_profile(directory: Path, label: str, top: int = 25) -> str:
    """Inclusive and self shares of py-spy's raw (collapsed) stacks for one run's worker processes."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in directory.glob(f"{label}-*.txt"):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [
                f for f in stack.split(";") if not f.startswith("thread ") and not f.startswith("process ")
            ]
            if not frames:
                continue
            total += n
            for f in set(frames):
                inclusive[f] += n
            own[frames[-1]] += n
    if not total:
        return f"[{label}] no samples"
    lines = [f"[{label}] {total} py-spy samples over the workers", "  inclusive:"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


def fmt(v: float, digits: int = 1) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def print_run(label: str, s: dict) -> None:
    print(
        f"[{label}] {s['requests']} requests in the window, {fmt(s['rps'])} req/s, p50 {fmt(s['p50_ms'])} ms, "
        f"p99 {fmt(s['p99_ms'])} ms, max {fmt(s['max_ms'])} ms; sent {s['sent']}, status {s['status']}, "
        f"non-200 {s['non200']}, timeouts {s['timeouts']}, connection errors {s['conn_errors']}, "
        f"over WeChat's 5 s {s['over_5s']}; {s['openids']} openids wrote, up to {s['per_openid']} messages each",
        flush=True,
    )
    if "cpu_machine" in s:
        print(
            f"[{label}] CPU cores busy: server workers {s['cpu_server']:.2f} ({fmt(s['cpu_ms_per_req'], 2)} ms "
            f"per request), this run's postgres backends {s['cpu_postgres']:.2f}, load client "
            f"{s['cpu_client']:.2f}, everything else {s['cpu_other']:.2f} (machine {s['cpu_machine']:.2f} of "
            f"{psutil.cpu_count()})",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--concurrency", default="50,200", help="connections, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per process")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options, e.g. '--reuse-port'")
    parser.add_argument("--aes", action="store_true", help="safe mode: encrypted pushes and replies")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s (0: closed loop)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request (s)")
    parser.add_argument("--openids", type=int, default=OPENIDS)
    parser.add_argument("--messages", type=int, default=3, help="messages per openid in a group")
    parser.add_argument("--group", type=int, default=0, help="openids per group (0: max(1000, 5 x conns))")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Flask baseline")
    parser.add_argument("--quick", action="store_true", help="10 s runs after 2 s of warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument("--profile", help="py-spy the workers during each run into this directory")
    parser.add_argument(
        "--profile-mode",
        choices=["gil", "wall"],
        default="gil",
        help="gil: only samples holding the GIL (where the CPU goes); wall: every active thread",
    )
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop (if installed)")
    parser.add_argument("--seed", type=int, default=20260305)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 10.0, 2.0
    levels = [int(c) for c in args.concurrency.split(",") if c]
    kinds = [d for d in args.databases.split(",") if d]
    scratch = Path(tempfile.mkdtemp(prefix="load-bench-"))
    questions = pick_questions(QUESTIONS, args.seed)
    print(
        f"load bench: gunicorn -w {args.workers} -k gthread --threads {args.threads} {args.gunicorn_args}; "
        f"{len(questions)} questions from {args.openids} openids, {args.messages} messages each, "
        f"{'safe (AES)' if args.aes else 'plain'} mode, "
        f"{f'open loop at {args.rate:g} req/s' if args.rate else 'closed loop'}, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s per run; {psutil.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    # Enough requests for 2,500 req/s; past that they are built on the fly.
    prebuilt = int((args.duration + args.warmup) * (args.rate or 2500))
    results = []
    try:
        for level in levels:
            bare_rps = bare_cpu = math.nan
            group = args.group or max(1000, 5 * level)
            if not args.no_bare:
                server = start_server("bench.bare_app:create_app()", {}, args, scratch)
                try:
                    # Built once the server is up, so the timestamps are fresh (WECHAT_MAX_CLOCK_SKEW).
                    plan = Plan(
                        questions, openids=args.openids, aes=args.aes, group=group, messages=args.messages
                    )
                    plan.build(prebuilt)
                    load = run_load(server, plan, level, args, keep_bodies=False, label=f"bare-c{level}")
                finally:
                    server.stop()
                s = stats(load, plan)
                bare_rps, bare_cpu = s["rps"], s["cpu_ms_per_req"]
                print_run(f"bare flask, c={level}", s)
                if args.profile:
                    print(summarize_profile(Path(args.profile), f"bare-c{level}"))
            for kind in kinds:
                db = fresh_database(kind, args, scratch)
                try:
                    server = start_server("app:create_app()", app_env(db.url), args, scratch)
                    try:
                        plan = Plan(
                            questions, openids=args.openids, aes=args.aes, group=group, messages=args.messages
                        )
                        plan.build(prebuilt)
                        label = f"{kind}-c{level}"
                        load = run_load(server, plan, level, args, keep_bodies=True, label=label, db=db)
                    finally:
                        server.stop()
                    s = stats(load, plan)
                    print_run(f"{kind}, c={level}", s)
                    if s["non200"] or s["conn_errors"]:
                        print(f"[{kind}, c={level}] server log tail:\n{server.tail()}")
                    checks = verify(db, plan, load)
                    for passed, what in checks:
                        print(f"  {'PASS' if passed else 'FAIL'}  {what}")
                    if args.profile:
                        print(summarize_profile(Path(args.profile), label))
                    results.append(
                        {
                            "db": kind,
                            "concurrency": level,
                            **s,
                            "bare_rps": bare_rps,
                            "ratio": s["rps"] / bare_rps if bare_rps else math.nan,
                            "bare_cpu_ms_per_req": bare_cpu,
                            "cpu_ratio": bare_cpu / s["cpu_ms_per_req"] if s["rps"] else math.nan,
                            "checks_passed": sum(p for p, _ in checks),
                            "checks": len(checks),
                        }
                    )
                finally:
                    db.close(args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept: {scratch}")

    print()
    # ratio: req/s over the bare endpoint's; CPU ratio: the bare endpoint's server CPU per request over
    # the service's (what the ratio would be if both runs had the same CPU); other: cores that the rest
    # of the machine used during the service's run.
    head = f"{'db':<11}{'conc':>5}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'bare req/s':>11}"
    head += (
        f"{'ratio':>7}{'CPU ms/req':>11}{'bare':>6}{'CPU ratio':>10}{'other':>6}{'non200':>7}{'timeouts':>9}"
    )
    print(head + "  checks")
    for r in results:
        verdict = "PASS" if r["checks_passed"] == r["checks"] else "FAIL"
        print(
            f"{r['db']:<11}{r['concurrency']:>5}{r['requests']:>9}{fmt(r['rps']):>8}{fmt(r['p50_ms']):>9}"
            f"{fmt(r['p99_ms']):>9}{fmt(r['bare_rps']):>11}{fmt(r['ratio'], 3):>7}"
            f"{fmt(r['cpu_ms_per_req'], 2):>11}{fmt(r['bare_cpu_ms_per_req'], 2):>6}{fmt(r['cpu_ratio'], 3):>10}"
            f"{fmt(r['cpu_other'], 2):>6}{r['non200']:>7}{r['timeouts'] + r['conn_errors']:>9}"
            f"  {r['checks_passed']}/{r['checks']} {verdict}"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in results:
        if r["db"] == "postgresql" and r["concurrency"] == 200:
            print(
                f"targets at 200 connections on PostgreSQL: ratio {fmt(r['ratio'], 2)} (>= 0.3: "
                f"{'met' if r['ratio'] >= 0.3 else 'missed'}), p99 {fmt(r['p99_ms'])} ms (<= 100: "
                f"{'met' if r['p99_ms'] <= 100 else 'missed'})"
            )
    print(json.dumps(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["checks_passed"] == r["checks"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
