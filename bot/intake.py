"""Update intake: at least once from Telegram, handled once.

Every update is **stored before it is acknowledged**: in webhook mode the answer is 200
only once its inbox row is committed; with long polling the offset that confirms an
update is sent only once it is stored. The row holds the update's JSON, encrypted, until
the update is handled. The worker that stores an update claims it in the same statement,
with a short lease in the database's time (renewed while the handlers run, and before they
start if the update waited long in its chat's queue); an update the sweeper takes over is
claimed when its turn comes; the first transaction the handlers commit marks it
handled together with their effects (``db.inbox``), and a handler that commits nothing
is marked when it returns. A sweeper in every process takes over the rows that a dead
worker left unhandled (its lease run out, or stored and never claimed).

When the update cannot be recorded (the database is busy or away) nothing handles it:
the person gets one kind reply saying Dyad will take it in by itself (Telegram sends it
again; polling asks for it again), and it is handled once it can be stored. An update
that can never be stored (an id out of range) gets one apology and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import logging
import socket
import uuid
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import Application, BaseUpdateProcessor

from bot.channels.base import Messenger, Outgoing
from bot.locales import pick_locale, t
from bot.services.crypto import Cipher
from db.clock import DatabaseTime
from db.engine import Database
from db.inbox import HANDLING, Handling, end_wait_in, handled_values
from db.models import InboxUpdate

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 1024 * 1024
"""The largest webhook body read (Telegram's updates are a few kilobytes at most)."""
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_MAX_UPDATE_ID = 2**63 - 1
_SECRET = web.AppKey("secret", str)
_REMEMBERED = 10_000  # update ids we already apologised for, per process
_RETRY_FIRST, _RETRY_MAX = 0.5, 15.0  # polling: waits after a failure to store
_WAITING_ROOM = 1 << 20  # PTB's own bound on updates in progress: never reached (see below)


class Unstorable(ValueError):
    """An update that no database can hold (no integer id, or one out of range)."""


def update_id_of(data: object) -> int:
    """The update's id, checked; :class:`Unstorable` when it has none we can keep."""
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise Unstorable("no integer update_id")
    if not 0 <= update_id <= _MAX_UPDATE_ID:
        raise Unstorable("update_id out of range")
    return update_id


@dataclass
class Inbox:
    """The ``inbox_updates`` table: store, claim, renew, mark handled, find what was left."""

    db: Database
    cipher: Cipher
    lease: timedelta = timedelta(seconds=10)
    leases: DatabaseTime | None = None

    def __post_init__(self) -> None:
        if self.leases is None:
            self.leases = DatabaseTime(self.db)

    async def _now(self) -> Any:
        assert self.leases is not None
        return await self.leases.now()

    def _insert(self, values: dict[str, Any]) -> Any:
        insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        return insert(InboxUpdate).values(values).on_conflict_do_nothing()

    async def store(self, update_id: int, raw: str) -> bool:
        """Keep an update before it is acknowledged; False when it was kept before."""
        statement = self._insert(
            {
                "update_id": update_id,
                "payload": self.cipher.encrypt(raw),
                "received_at": await self._now(),
                "attempts": 0,
            }
        )
        async with self.db.uow() as uow:
            result = await uow.session.execute(statement)
            await uow.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def store_claimed(
        self, update_id: int, raw: str, command_from: int | None, *, sender: int | None = None
    ) -> Handling | None:
        """Keep an update before it is acknowledged, already claimed by this worker.

        One transaction instead of two: the update this worker stores is the one it is about
        to handle, so the row is written with this worker's lease. None when it was kept
        before (another worker, or an earlier delivery of it, has it). A claim that waits
        long before the handlers start is renewed first (``renew``).
        """
        now = await self._now()
        handling = Handling(
            update_id, uuid.uuid4().hex, now, sender=sender, ends_wait_of=command_from
        )
        statement = self._insert(
            {
                "update_id": update_id,
                "payload": self.cipher.encrypt(raw),
                "received_at": now,
                "attempts": 1,
                "lease_until": now + self.lease,
                "lease_token": handling.token,
            }
        )
        async with self.db.uow() as uow:
            result = await uow.session.execute(statement)
            await uow.commit()
        return handling if result.rowcount else None  # type: ignore[attr-defined]

    async def claim(
        self, update_id: int, command_from: int | None, *, sender: int | None = None
    ) -> Handling | None:
        """Take an unhandled update for this worker; None when it is handled or taken.

        ``command_from``: the update is a command from this Telegram user, which ends
        whatever typed answer the bot was waiting for from them (in the first transaction
        of its handling: ``Handling.ends_wait_of``).
        """
        now = await self._now()
        handling = Handling(
            update_id, uuid.uuid4().hex, now, sender=sender, ends_wait_of=command_from
        )
        statement = (
            update(InboxUpdate)
            .where(
                InboxUpdate.update_id == update_id,
                InboxUpdate.handled_at.is_(None),
                or_(InboxUpdate.lease_until.is_(None), InboxUpdate.lease_until < now),
            )
            .values(
                lease_until=now + self.lease,
                lease_token=handling.token,
                attempts=InboxUpdate.attempts + 1,
            )
            .returning(InboxUpdate.update_id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.uow() as uow:
            taken = (await uow.session.scalars(statement)).one_or_none()
            if taken is None:
                return None
            await uow.commit()
        return handling

    async def renew(self, handling: Handling) -> bool:
        """Extend the claim (while the handlers run, or after it waited for them to start).

        False when the claim was lost: its lease ran out and another worker took the update.
        """
        now = await self._now()
        statement = (
            update(InboxUpdate)
            .where(
                InboxUpdate.update_id == handling.update_id,
                InboxUpdate.lease_token == handling.token,
                InboxUpdate.handled_at.is_(None),
            )
            .values(lease_until=now + self.lease)
            .returning(InboxUpdate.update_id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.uow() as uow:
            kept = (await uow.session.scalars(statement)).one_or_none()
            await uow.commit()
        return kept is not None

    async def finish(self, handling: Handling) -> None:
        """Mark handled an update whose handlers committed nothing (else that did it)."""
        if handling.marked:
            return
        async with self.db.uow() as uow:
            await end_wait_in(uow.session, handling)
            await uow.session.execute(
                update(InboxUpdate)
                .where(
                    InboxUpdate.update_id == handling.update_id,
                    InboxUpdate.lease_token == handling.token,
                    InboxUpdate.handled_at.is_(None),
                )
                .values(**handled_values(await self._now()))
                .execution_options(synchronize_session=False)
            )
            await uow.commit()
        handling.marked = True

    async def left_unhandled(self, *, older_than: timedelta, limit: int = 100) -> list[str]:
        """The JSON of updates nobody is handling: never claimed for a while, or lease run out."""
        now = await self._now()
        query = (
            select(InboxUpdate.payload)
            .where(
                InboxUpdate.handled_at.is_(None),
                InboxUpdate.payload.is_not(None),
                or_(
                    InboxUpdate.lease_until < now,
                    InboxUpdate.lease_until.is_(None)
                    & (InboxUpdate.received_at < now - older_than),
                ),
            )
            .order_by(InboxUpdate.update_id)
            .limit(limit)
        )
        async with self.db.uow() as uow:
            payloads = list((await uow.session.scalars(query)).all())
        return [self.cipher.decrypt(payload) for payload in payloads if payload is not None]


class InboxProcessor(BaseUpdateProcessor):
    """PTB's update processor: claims each update in the inbox before its handlers run.

    Updates of one chat are handled strictly in the order they came, one at a time;
    updates of different chats run concurrently, ``max_concurrent`` at most (1: one update
    at a time, as PTB's default). PTB starts one task per update in arrival order and its
    own semaphore is left wide open, so each task takes its place in its chat's queue (a
    FIFO lock) before anything can suspend it; the bound on work comes after that place.
    An update that is handled, or being handled by another worker, is not handled again;
    one whose claim cannot be recorded is not handled at all (the inbox keeps it for the
    sweeper) and its sender hears once why.
    """

    def __init__(self, intake: Intake | None = None, *, max_concurrent: int = 1) -> None:
        super().__init__(max_concurrent_updates=1 if max_concurrent <= 1 else _WAITING_ROOM)
        self._intake = intake
        self._working = asyncio.Semaphore(max(max_concurrent, 1))
        self._chats: dict[int, asyncio.Lock] = {}
        self._chat_users: dict[int, int] = {}

    @property
    def intake(self) -> Intake:
        assert self._intake is not None, "the processor needs its Intake"
        return self._intake

    @intake.setter
    def intake(self, intake: Intake) -> None:
        self._intake = intake

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            await coroutine
            return
        key = _order_key(update)
        if key is None:
            async with self._working:
                await self._handle(update, coroutine)
            return
        lock = self._chats.get(key)
        if lock is None:
            lock = self._chats[key] = asyncio.Lock()
        self._chat_users[key] = self._chat_users.get(key, 0) + 1
        try:
            async with lock, self._working:
                await self._handle(update, coroutine)
        finally:
            users = self._chat_users[key] - 1
            if users:
                self._chat_users[key] = users
            else:
                del self._chat_users[key]
                del self._chats[key]

    async def _handle(self, update: Update, coroutine: Awaitable[Any]) -> None:
        intake = self.intake
        intake.queued.discard(update.update_id)
        stored = intake.claimed.pop(update.update_id, None)
        try:
            if stored is None:  # the sweeper's: claimed now
                handling = await intake.inbox.claim(
                    update.update_id, _command_from(update), sender=_sender(update)
                )
            else:  # claimed when stored; renewed first if it waited a while in its queue
                handling, at = stored
                waited = asyncio.get_running_loop().time() - at
                if waited > intake.inbox.lease.total_seconds() / 3:
                    handling = handling if await intake.inbox.renew(handling) else None
        except Exception:
            _close(coroutine)
            log.exception("could not claim an update; left to the sweeper")
            await intake.apologise(update, "common.intake_busy")
            return
        if handling is None:
            _close(coroutine)
            log.info("update already handled", extra={"update_id": update.update_id})
            return
        keeper = asyncio.create_task(self._keep(handling))
        context = HANDLING.set(handling)
        try:
            await coroutine
        finally:
            HANDLING.reset(context)
            handling.done = True
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                await intake.inbox.finish(handling)
            except Exception:
                # Its lease runs out and the sweeper handles it again: at most this repeats.
                log.exception("could not mark an update handled")

    async def _keep(self, handling: Handling) -> None:
        while True:
            await asyncio.sleep(self.intake.inbox.lease.total_seconds() / 3)
            try:
                await self.intake.inbox.renew(handling)
            except Exception:
                log.warning("could not renew the claim on an update", exc_info=True)


def _close(coroutine: Awaitable[Any]) -> None:
    if inspect.iscoroutine(coroutine):
        coroutine.close()


def _order_key(update: Update) -> int | None:
    """What orders an update: its chat (else its sender); None when it has neither."""
    chat = update.effective_chat
    if chat is not None:
        return chat.id
    user = update.effective_user
    return user.id if user is not None else None


def _sender(update: Update) -> int | None:
    user = update.effective_user
    return user.id if user is not None else None


def _command_from(update: Update) -> int | None:
    message = update.message
    if message and message.text and message.text.startswith("/") and update.effective_user:
        return update.effective_user.id
    return None


def _language(update: Update) -> str:
    user = update.effective_user
    return pick_locale(user.language_code if user is not None else None)


@dataclass
class Intake:
    """Takes updates in (polling or webhook), stores them first, feeds the Application."""

    application: Application  # type: ignore[type-arg]
    inbox: Inbox
    messenger: Messenger
    sweep_every: float = 5.0
    sweep_after: timedelta = timedelta(seconds=10)
    queued: set[int] = field(default_factory=set)
    claimed: dict[int, tuple[Handling, float]] = field(default_factory=dict)
    """Updates this worker stored already claimed (``Inbox.store_claimed``), with when."""
    _apologised: OrderedDict[int, None] = field(default_factory=OrderedDict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _webhook: web.AppRunner | None = None
    webhook_port: int = 0

    @property
    def bot(self) -> Bot:
        bot: Bot = self.application.bot
        return bot

    # Feeding the Application -----------------------------------------------------------------

    async def take(self, data: dict[str, Any], raw: str) -> bool:
        """Store one update, claimed by this worker, and queue it; False when stored before.

        Raises :class:`Unstorable` (never storable) or the database's error (not now).
        """
        update_id = update_id_of(data)
        try:
            update = Update.de_json(data, self.bot)
        except Exception as error:
            raise Unstorable(f"not an update: {error}") from error
        handling = await self.inbox.store_claimed(
            update_id, raw, _command_from(update), sender=_sender(update)
        )
        if handling is None:
            return False
        self.claimed[update_id] = (handling, asyncio.get_running_loop().time())
        await self._queue(update)
        return True

    async def _feed(self, data: dict[str, Any]) -> None:
        await self._queue(Update.de_json(data, self.bot))

    async def _queue(self, update: Update) -> None:
        self.queued.add(update.update_id)
        await self.application.update_queue.put(update)

    async def refused(self, data: object, error: BaseException) -> None:
        """An update we could not store: say so once to whoever sent it."""
        if not isinstance(data, dict):
            return
        try:
            update = Update.de_json(data, self.bot)
        except Exception:
            return
        key = "common.error" if isinstance(error, Unstorable) else "common.intake_busy"
        await self.apologise(update, key)

    async def apologise(self, update: Update, key: str) -> None:
        """One kind reply per update, however often Telegram sends it again."""
        chat = update.effective_chat
        if chat is None or update.update_id in self._apologised:
            return
        self._apologised[update.update_id] = None
        while len(self._apologised) > _REMEMBERED:
            self._apologised.popitem(last=False)
        if update.callback_query is not None:
            with contextlib.suppress(Exception):
                await update.callback_query.answer(t(_language(update), key)[:200])
            return
        try:
            await self.messenger.send(chat.id, Outgoing(t(_language(update), key)))
        except Exception:
            log.warning("could not tell the sender that their update was not taken in")

    # The sweeper -------------------------------------------------------------------------------

    async def sweep(self, *, older_than: timedelta | None = None) -> int:
        """Queue the updates a dead worker left unhandled; how many were queued."""
        fed = 0
        after = self.sweep_after if older_than is None else older_than
        for raw in await self.inbox.left_unhandled(older_than=after):
            data = json.loads(raw)
            if data.get("update_id") in self.queued:
                continue
            await self._feed(data)
            fed += 1
        if fed:
            log.warning("updates left unhandled taken over", extra={"updates": fed})
        return fed

    async def _sweep_forever(self) -> None:
        # At start, whatever nobody holds is ours at once (we were not running before).
        first: timedelta | None = timedelta()
        while True:
            try:
                await self.sweep(older_than=first)
                first = None
            except Exception:
                log.warning("inbox sweep failed; trying again", exc_info=True)
            await asyncio.sleep(self.sweep_every)

    # Long polling ------------------------------------------------------------------------------

    async def _poll_forever(self, allowed_updates: list[str], long_poll: int) -> None:
        offset: int | None = None
        wait = _RETRY_FIRST
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=long_poll,
                    allowed_updates=allowed_updates,
                    read_timeout=long_poll + 10,
                )
            except TelegramError:
                log.warning("getUpdates failed; trying again", exc_info=True)
                await asyncio.sleep(wait)
                wait = min(wait * 2, _RETRY_MAX)
                continue
            failed = False
            for incoming in updates:
                data = incoming.to_dict()
                try:
                    await self.take(data, json.dumps(data, ensure_ascii=False))
                except Unstorable as error:
                    log.error("update dropped: %s", error)
                    await self.refused(data, error)
                except Exception as error:
                    # Not confirmed: the next getUpdates asks for this update again.
                    log.warning("could not store an update; asking for it again", exc_info=True)
                    await self.refused(data, error)
                    failed = True
                    break
                offset = incoming.update_id + 1
            if failed:
                await asyncio.sleep(wait)
                wait = min(wait * 2, _RETRY_MAX)
            else:
                wait = _RETRY_FIRST

    # The webhook -------------------------------------------------------------------------------

    async def _receive(self, request: web.Request) -> web.Response:
        # The size is capped first and the secret checked next, before a byte of the body is
        # read: a stranger's huge post costs nothing.
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        secret = request.app[_SECRET]
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook request without the right secret refused")
            return web.Response(status=403)
        try:
            body = await request.read()
            data = json.loads(body)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        except ValueError:
            return web.Response(status=400)
        try:
            await self.take(data, body.decode("utf-8"))
        except Unstorable as error:
            log.error("update dropped: %s", error)
            await self.refused(data, error)
            return web.Response(status=200)  # sending it again would not help
        except Exception as error:
            log.warning("could not store an update; Telegram will send it again", exc_info=True)
            await self.refused(data, error)
            return web.Response(status=503)
        return web.Response(status=200)

    async def _serve_webhook(self, host: str, port: int, path: str, secret: str) -> None:
        app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        app[_SECRET] = secret
        app.router.add_post(path, self._receive)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.webhook_port = int(sock.getsockname()[1])
        self._webhook = runner

    # Lifecycle ---------------------------------------------------------------------------------

    async def start_polling(self, allowed_updates: list[str], long_poll: int = 5) -> None:
        """Long polling (no webhook), with the sweeper."""
        await self.bot.delete_webhook()
        self._tasks.append(asyncio.create_task(self._poll_forever(allowed_updates, long_poll)))
        self._tasks.append(asyncio.create_task(self._sweep_forever()))

    async def start_webhook(
        self,
        *,
        listen: str,
        port: int,
        path: str,
        url: str,
        secret: str,
        allowed_updates: list[str],
        retries: int = 3,
    ) -> None:
        """Serve Telegram's webhook and register it; several workers may share one URL."""
        await self._serve_webhook(listen, port, path, secret)
        for attempt in range(retries + 1):
            try:
                await self.bot.set_webhook(
                    url=url, secret_token=secret, allowed_updates=allowed_updates
                )
                break
            except TelegramError:
                if attempt == retries:
                    raise
                await asyncio.sleep(1.0)
        self._tasks.append(asyncio.create_task(self._sweep_forever()))

    def start_sweeper(self) -> None:
        """Only the sweeper (a process that takes updates some other way)."""
        self._tasks.append(asyncio.create_task(self._sweep_forever()))

    async def stop(self) -> None:
        """Stop taking updates; what is stored and not handled waits for the next sweep."""
        if self._webhook is not None:
            await self._webhook.cleanup()
            self._webhook = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
