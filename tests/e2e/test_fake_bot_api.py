"""The fake Bot API is the referee for every Telegram test: it must answer like Telegram."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import Bot as PTBBot
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
)

from bot.core.clock import ManualClock
from fakebotapi import (
    FakeBotAPI,
    FakeUser,
    FakeUserError,
    RateLimits,
    parse_html,
)
from fakebotapi.formatting import EntityParseError, trim
from fakebotapi.ratelimits import RateLimiter

ANA = 1001
BEN = 1002


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(timeout_delay=0.3, webhook_retry_delay=0.01) as api:
        yield api


@pytest.fixture
async def http(fake: FakeBotAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/") as client:
        yield client


@pytest.fixture
async def ana(fake: FakeBotAPI) -> FakeUser:
    user = fake.add_user(ANA, "Ana", language_code="es", username="ana_r")
    await user.send_command("start")
    return user


async def call(http: httpx.AsyncClient, method: str, **params: Any) -> dict[str, Any]:
    """POST a JSON body like most Bot API clients; returns the decoded answer."""
    response = await http.post(method, json=params)
    body: dict[str, Any] = response.json()
    assert response.status_code == (200 if body["ok"] else body["error_code"])
    return body


def error(body: dict[str, Any]) -> tuple[int, str]:
    assert body["ok"] is False, body
    return body["error_code"], body["description"]


def keyboard(*rows: list[tuple[str, str]]) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": t, "callback_data": d} for t, d in row] for row in rows]}


# Transport and authentication -------------------------------------------------------------


async def test_a_wrong_token_is_unauthorized(fake: FakeBotAPI) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{fake.base_url}999:WRONG/getMe")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_methods_are_not_found_but_names_ignore_case(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    assert error(await call(http, "sendPigeon", chat_id=1)) == (404, "Not Found")
    me = await call(http, "GETME")
    assert me["result"]["username"] == "dyad_test_bot"
    assert me["result"]["is_bot"] is True
    assert [(c.method, c.status) for c in fake.calls] == [("sendPigeon", 404), ("getMe", 200)]


async def test_parameters_arrive_as_query_form_json_or_multipart(
    http: httpx.AsyncClient, ana: FakeUser
) -> None:
    markup = json.dumps(keyboard([("OK", "ok")]))
    await http.get("sendMessage", params={"chat_id": ANA, "text": "query"})
    await http.post("sendMessage", data={"chat_id": ANA, "text": "form", "reply_markup": markup})
    await http.post("sendMessage", json={"chat_id": ANA, "text": "json"})
    await http.post(
        "sendMessage",
        data={"chat_id": str(ANA), "text": "multipart"},
        files={"unused": ("x.txt", b"x", "text/plain")},
    )
    assert [m.text for m in ana.messages] == ["query", "form", "json", "multipart"]
    assert ana.messages[1].reply_markup == [[("OK", "ok")]]


# Strictness ----------------------------------------------------------------------------------


async def test_chat_must_be_given_and_known(http: httpx.AsyncClient, ana: FakeUser) -> None:
    assert error(await call(http, "sendMessage", text="hi")) == (
        400,
        "Bad Request: chat_id is empty",
    )
    for chat_id in (4242, "not-a-number"):
        assert error(await call(http, "sendMessage", chat_id=chat_id, text="hi")) == (
            400,
            "Bad Request: chat not found",
        )
    assert ana.messages == []


@pytest.mark.parametrize("text", [None, "", "   \n ", "<b> </b>"])
async def test_empty_text_is_refused(
    http: httpx.AsyncClient, ana: FakeUser, text: str | None
) -> None:
    params: dict[str, Any] = {"chat_id": ANA, "parse_mode": "HTML"}
    if text is not None:
        params["text"] = text
    assert error(await call(http, "sendMessage", **params)) == (
        400,
        "Bad Request: message text is empty",
    )


async def test_length_is_counted_after_entity_parsing(
    http: httpx.AsyncClient, ana: FakeUser
) -> None:
    at_limit = "<b>" + "x" * 4096 + "</b>"
    assert (await call(http, "sendMessage", chat_id=ANA, text=at_limit, parse_mode="HTML"))["ok"]
    # Telegram counts code points here: 4096 emoji pass although they are 8192 UTF-16 units.
    assert (await call(http, "sendMessage", chat_id=ANA, text="😀" * 4096))["ok"]
    assert error(await call(http, "sendMessage", chat_id=ANA, text="x" * 4097)) == (
        400,
        "Bad Request: message is too long",
    )
    assert error(
        await call(http, "sendMessage", chat_id=ANA, text="&amp;" * 4097, parse_mode="HTML")
    ) == (400, "Bad Request: message is too long")
    assert [len(m.text) for m in ana.messages] == [4096, 4096]


async def test_callback_data_is_limited_to_64_bytes(http: httpx.AsyncClient, ana: FakeUser) -> None:
    fits = await call(
        http, "sendMessage", chat_id=ANA, text="a", reply_markup=keyboard([("ok", "d" * 64)])
    )
    assert fits["ok"]
    for data in ("d" * 65, "ü" * 33, ""):  # 33 ü are 66 bytes
        refused = await call(
            http, "sendMessage", chat_id=ANA, text="b", reply_markup=keyboard([("no", data)])
        )
        assert error(refused) == (400, "Bad Request: BUTTON_DATA_INVALID")
    assert len(ana.messages) == 1


async def test_inline_keyboards_are_validated(http: httpx.AsyncClient, ana: FakeUser) -> None:
    text_only = {"inline_keyboard": [[{"text": "just text"}]]}
    assert error(
        await call(http, "sendMessage", chat_id=ANA, text="a", reply_markup=text_only)
    ) == (
        400,
        "Bad Request: can't parse inline keyboard button: "
        "Text buttons are unallowed in the inline keyboard",
    )
    response = await http.post(
        "sendMessage", data={"chat_id": ANA, "text": "a", "reply_markup": "{not json"}
    )
    assert response.json()["description"] == (
        "Bad Request: can't parse reply keyboard markup JSON object"
    )
    url_button = {"inline_keyboard": [[{"text": "Site", "url": "https://example.org/x"}]]}
    sent = await call(http, "sendMessage", chat_id=ANA, text="a", reply_markup=url_button)
    assert sent["result"]["reply_markup"] == url_button
    assert ana.last_message is not None and ana.last_message.reply_markup == [[("Site", None)]]


@pytest.mark.parametrize(
    ("html", "description"),
    [
        ("line<br>break", 'Unsupported start tag "br" at byte offset 4'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>bold", "Can't find end tag corresponding to start tag b"),
        (
            "<b><i>x</b></i>",
            'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"',
        ),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<a href="https://x.org>x</a>', "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("AT&T", "Unsupported HTML entity at byte offset 2"),
        ("a&nbsp;b", "Unsupported HTML entity at byte offset 1"),
        ("ñ<u>x</i>", 'Unmatched end tag at byte offset 6, expected "</u>", found "</i>"'),
    ],
)
async def test_broken_html_is_refused_with_telegrams_description(
    http: httpx.AsyncClient, ana: FakeUser, html: str, description: str
) -> None:
    code, text = error(await call(http, "sendMessage", chat_id=ANA, text=html, parse_mode="HTML"))
    assert code == 400
    assert text.startswith(f"Bad Request: can't parse entities: {description}")
    assert ana.messages == []


async def test_only_html_parse_mode_is_spoken(http: httpx.AsyncClient, ana: FakeUser) -> None:
    body = await call(http, "sendMessage", chat_id=ANA, text="*x*", parse_mode="MarkdownV2")
    assert error(body)[0] == 400
    assert error(await call(http, "sendMessage", chat_id=ANA, text="x", parse_mode="Klingon")) == (
        400,
        "Bad Request: unsupported parse_mode",
    )


def test_every_supported_tag_becomes_its_entity() -> None:
    text, entities = parse_html(
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>"
        "<strike>k</strike><del>d</del><span class='tg-spoiler'>p</span><tg-spoiler>q</tg-spoiler>"
        '<a href="https://x.org/?a=1&amp;b=2">l</a><code>c</code>'
        '<pre><code class="language-python">py</code></pre><blockquote>q</blockquote>'
        "<blockquote expandable>x</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        " &lt;&gt;&amp;&quot;&#39;&#x41;"
    )
    assert text == "bsieunskdpqlcpyqx👍 <>&\"'A"
    by_offset = {e["offset"]: e for e in entities}
    assert [e["type"] for e in entities] == [
        "bold",
        "bold",
        "italic",
        "italic",
        "underline",
        "underline",
        "strikethrough",
        "strikethrough",
        "strikethrough",
        "spoiler",
        "spoiler",
        "text_link",
        "code",
        "pre",
        "blockquote",
        "expandable_blockquote",
        "custom_emoji",
    ]
    assert by_offset[11]["url"] == "https://x.org/?a=1&b=2"
    assert by_offset[13] == {"type": "pre", "offset": 13, "length": 2, "language": "python"}
    assert by_offset[17]["custom_emoji_id"] == "5368324170671202286"


def test_entity_offsets_are_utf16_and_survive_trimming() -> None:
    text, entities = parse_html("\n 😀 <b>hola</b> \n")
    assert trim(text, entities) == ("😀 hola", [{"type": "bold", "offset": 3, "length": 4}])
    with pytest.raises(EntityParseError):
        parse_html("<tg-emoji>x</tg-emoji>")


async def test_replies_must_point_at_an_existing_message(
    http: httpx.AsyncClient, ana: FakeUser
) -> None:
    start = ana.sent_messages[0]
    via_parameters = await call(
        http,
        "sendMessage",
        chat_id=ANA,
        text="welcome",
        reply_parameters={"message_id": start.message_id},
    )
    assert via_parameters["result"]["reply_to_message"]["text"] == "/start"
    legacy = await call(
        http, "sendMessage", chat_id=ANA, text="again", reply_to_message_id=start.message_id
    )
    assert legacy["ok"]
    assert error(
        await call(http, "sendMessage", chat_id=ANA, text="x", reply_parameters={"message_id": 99})
    ) == (400, "Bad Request: message to be replied not found")
    tolerant = await call(
        http,
        "sendMessage",
        chat_id=ANA,
        text="y",
        reply_parameters={"message_id": 99, "allow_sending_without_reply": True},
    )
    assert "reply_to_message" not in tolerant["result"]
    assert [m.reply_to_message_id for m in ana.messages] == [start.message_id] * 2 + [None]


async def test_edits_are_checked_and_remembered(http: httpx.AsyncClient, ana: FakeUser) -> None:
    sent = await call(
        http,
        "sendMessage",
        chat_id=ANA,
        text="How was today?",
        reply_markup=keyboard([("Ok", "o")]),
    )
    message_id = sent["result"]["message_id"]
    same = await call(
        http,
        "editMessageText",
        chat_id=ANA,
        message_id=message_id,
        text="How was today?",
        reply_markup=keyboard([("Ok", "o")]),
    )
    assert error(same)[1].startswith("Bad Request: message is not modified: ")
    missing = await call(http, "editMessageText", chat_id=ANA, message_id=777, text="x")
    assert error(missing) == (400, "Bad Request: message to edit not found")
    # Editing the text without reply_markup drops the keyboard, as on Telegram.
    edited = await call(
        http,
        "editMessageText",
        chat_id=ANA,
        message_id=message_id,
        text="<i>Thanks</i>",
        parse_mode="HTML",
    )
    assert "reply_markup" not in edited["result"]
    message = ana.messages[0]
    assert (message.text, message.raw_text, message.parse_mode) == (
        "Thanks",
        "<i>Thanks</i>",
        "HTML",
    )
    assert message.reply_markup is None
    assert message.edit_date is not None
    assert [(v.text, v.reply_markup) for v in message.edits] == [
        ("How was today?", [[("Ok", "o")]])
    ]
    user_message = ana.sent_messages[0].message_id
    assert error(
        await call(http, "editMessageText", chat_id=ANA, message_id=user_message, text="hack")
    ) == (400, "Bad Request: message can't be edited")


async def test_reply_markup_edits(http: httpx.AsyncClient, ana: FakeUser) -> None:
    sent = await call(
        http, "sendMessage", chat_id=ANA, text="Pick", reply_markup=keyboard([("A", "a")])
    )
    message_id = sent["result"]["message_id"]
    changed = await call(
        http,
        "editMessageReplyMarkup",
        chat_id=ANA,
        message_id=message_id,
        reply_markup=keyboard([("A", "a"), ("B", "b")]),
    )
    assert changed["ok"]
    assert ana.messages[0].reply_markup == [[("A", "a"), ("B", "b")]]
    assert (await call(http, "editMessageReplyMarkup", chat_id=ANA, message_id=message_id))["ok"]
    assert ana.messages[0].reply_markup is None
    again = await call(http, "editMessageReplyMarkup", chat_id=ANA, message_id=message_id)
    assert error(again)[1].startswith("Bad Request: message is not modified")


async def test_deleting_hides_a_message_once(http: httpx.AsyncClient, ana: FakeUser) -> None:
    first = await call(http, "sendMessage", chat_id=ANA, text="one")
    await call(http, "sendMessage", chat_id=ANA, text="two")
    message_id = first["result"]["message_id"]
    assert (await call(http, "deleteMessage", chat_id=ANA, message_id=message_id))["result"] is True
    assert error(await call(http, "deleteMessage", chat_id=ANA, message_id=message_id)) == (
        400,
        "Bad Request: message to delete not found",
    )
    edit = await call(http, "editMessageText", chat_id=ANA, message_id=message_id, text="x")
    assert error(edit) == (400, "Bad Request: message to edit not found")
    assert [m.text for m in ana.visible_messages] == ["two"]
    assert [m.deleted for m in ana.messages] == [True, False]


async def test_callback_queries_are_answered_once(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    await call(
        http, "sendMessage", chat_id=ANA, text="Ready?", reply_markup=keyboard([("Yes", "y")])
    )
    query = await ana.press_button("Yes")
    assert error(await call(http, "answerCallbackQuery", callback_query_id="123")) == (
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    answered = await call(
        http, "answerCallbackQuery", callback_query_id=query.id, text="Saved", show_alert=True
    )
    assert answered["result"] is True
    assert (query.answered, query.answer_text, query.show_alert) == (True, "Saved", True)
    assert error(await call(http, "answerCallbackQuery", callback_query_id=query.id))[0] == 400
    assert fake.callback_queries == [query] == ana.callback_queries


async def test_documents_keep_their_bytes_and_name(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    response = await http.post(
        "sendDocument",
        data={"chat_id": str(ANA), "caption": "<b>Digest</b>", "parse_mode": "HTML"},
        files={"document": ("digest.txt", b"weekly digest", "text/plain")},
    )
    result = response.json()["result"]
    assert result["document"]["file_name"] == "digest.txt"
    assert result["caption_entities"] == [{"type": "bold", "offset": 0, "length": 6}]
    message = ana.messages[0]
    assert message.document is not None
    assert (message.document.content, message.caption) == (b"weekly digest", "Digest")
    resend = await call(http, "sendDocument", chat_id=ANA, document=result["document"]["file_id"])
    assert resend["result"]["document"]["file_id"] == result["document"]["file_id"]
    assert error(await call(http, "sendDocument", chat_id=ANA)) == (
        400,
        "Bad Request: there is no document in the request",
    )
    empty = await http.post(
        "sendDocument", data={"chat_id": str(ANA)}, files={"document": ("e.txt", b"", "text/plain")}
    )
    assert empty.json()["description"] == "Bad Request: file must be non-empty"
    by_url = await call(http, "sendDocument", chat_id=ANA, document="https://x.org/a.pdf")
    assert error(by_url) == (400, "Bad Request: wrong file identifier/HTTP URL specified")
    file = await call(http, "getFile", file_id=result["document"]["file_id"])
    async with httpx.AsyncClient() as client:
        download = await client.get(
            f"{fake.base_file_url}{fake.token}/{file['result']['file_path']}"
        )
    assert download.content == b"weekly digest"


async def test_commands_are_kept_per_scope_and_language(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    english = [{"command": "checkin", "description": "Daily check-in"}]
    spanish = [{"command": "checkin", "description": "Registro diario"}]
    assert (await call(http, "setMyCommands", commands=english))["result"] is True
    private = {"type": "all_private_chats"}
    await call(http, "setMyCommands", commands=spanish, scope=private, language_code="es")
    assert (await call(http, "getMyCommands"))["result"] == english
    scoped = await call(http, "getMyCommands", scope=private, language_code="es")
    assert scoped["result"] == spanish
    assert (await call(http, "getMyCommands", language_code="es"))["result"] == []
    assert fake.commands(private, "es") == [("checkin", "Registro diario")]
    for bad in ("CheckIn", "check-in", "x" * 33):
        refused = await call(http, "setMyCommands", commands=[{"command": bad, "description": "d"}])
        assert error(refused) == (400, "Bad Request: BOT_COMMAND_INVALID")
    assert fake.commands() == [("checkin", "Daily check-in")]


async def test_get_chat_and_chat_member(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    chat = (await call(http, "getChat", chat_id=ANA))["result"]
    assert (chat["type"], chat["first_name"], chat["username"]) == ("private", "Ana", "ana_r")
    member = await call(http, "getChatMember", chat_id=ANA, user_id=fake.bot_id)
    assert member["result"]["status"] == "member"
    await ana.block_bot()
    member = await call(http, "getChatMember", chat_id=ANA, user_id=fake.bot_id)
    assert member["result"]["status"] == "kicked"
    assert error(await call(http, "getChat", chat_id=5))[1] == "Bad Request: chat not found"


async def test_groups_are_known_once_added(http: httpx.AsyncClient, fake: FakeBotAPI) -> None:
    team = fake.add_group(-1001, "Clinic team", supergroup=True)
    assert (await call(http, "sendMessage", chat_id=team.id, text="Weekly summary"))["ok"]
    chat = (await call(http, "getChat", chat_id=team.id))["result"]
    assert (chat["type"], chat["title"]) == ("supergroup", "Clinic team")
    assert error(await call(http, "sendChatAction", chat_id=team.id, action="dancing")) == (
        400,
        "Bad Request: wrong parameter action in request",
    )
    assert [m.text for m in fake.sent_to(team.id)] == ["Weekly summary"]


# Users who cannot be reached -------------------------------------------------------------


async def test_the_bot_cannot_write_first_or_to_a_user_who_blocked_it(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    ben = fake.add_user(BEN, "Ben")
    assert error(await call(http, "sendMessage", chat_id=BEN, text="hi")) == (
        403,
        "Forbidden: bot can't initiate conversation with a user",
    )
    await ben.send_text("hello")
    assert (await call(http, "sendMessage", chat_id=BEN, text="hi"))["ok"]
    await ben.block_bot()
    assert error(await call(http, "sendMessage", chat_id=BEN, text="still there?")) == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    with pytest.raises(FakeUserError):
        await ben.send_text("typing into a blocked chat")
    await ben.unblock_bot()
    assert (await call(http, "sendMessage", chat_id=BEN, text="welcome back"))["ok"]
    statuses = [
        (
            u["my_chat_member"]["old_chat_member"]["status"],
            u["my_chat_member"]["new_chat_member"]["status"],
        )
        for u in fake.updates
        if "my_chat_member" in u
    ]
    assert statuses == [("member", "kicked"), ("kicked", "member")]
    assert [m.text for m in ben.messages] == ["hi", "welcome back"]


# Update delivery -------------------------------------------------------------------------


async def test_get_updates_offset_confirms_and_limit_caps(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    ben = fake.add_user(BEN, "Ben")
    for text in ("one", "two", "three"):
        await ben.send_text(text)
    first = (await call(http, "getUpdates", limit=2))["result"]
    assert [u["message"]["text"] for u in first] == ["one", "two"]
    assert first[0]["update_id"] < first[1]["update_id"]
    again = (await call(http, "getUpdates"))["result"]
    assert [u["message"]["text"] for u in again] == ["one", "two", "three"]
    rest = (await call(http, "getUpdates", offset=first[1]["update_id"] + 1))["result"]
    assert [u["message"]["text"] for u in rest] == ["three"]
    assert (await call(http, "getUpdates", offset=rest[0]["update_id"] + 1))["result"] == []


async def test_long_polling_wakes_up_when_an_update_arrives(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    ben = fake.add_user(BEN, "Ben")
    poll = asyncio.create_task(call(http, "getUpdates", timeout=30))
    await fake.wait_for(lambda: fake.calls_of("getUpdates"))
    await ben.send_text("are you there?")
    # A poll that only returned at its 30 s timeout would fail this bound.
    result = (await asyncio.wait_for(poll, 5))["result"]
    assert [u["message"]["text"] for u in result] == ["are you there?"]


async def test_a_second_poller_terminates_the_first(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    first = asyncio.create_task(call(http, "getUpdates", timeout=30))
    await fake.wait_for(lambda: fake.calls_of("getUpdates"))
    second = asyncio.create_task(call(http, "getUpdates", timeout=0))
    assert error(await asyncio.wait_for(first, 5)) == (
        409,
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )
    assert (await second)["result"] == []


async def test_allowed_updates_filters_later_updates(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    await call(http, "sendMessage", chat_id=ANA, text="Q", reply_markup=keyboard([("A", "a")]))
    start_update = (await call(http, "getUpdates", allowed_updates=["message"]))["result"][-1]
    await ana.press_button("A")
    await ana.send_text("hello")
    later = (await call(http, "getUpdates", offset=start_update["update_id"] + 1))["result"]
    assert [list(u)[1] for u in later] == ["message"]
    assert any("callback_query" in u for u in fake.updates)


# Webhooks --------------------------------------------------------------------------------


class Receiver:
    """A stand-in for the bot's webhook endpoint."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, Any], str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if secret != "s3cret_token-1":
            return web.Response(status=403)
        if self.failures:
            self.failures -= 1
            return web.Response(status=500)
        self.received.append((await request.json(), secret))
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield hook, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_webhook_gets_updates_with_the_secret_and_retries(
    http: httpx.AsyncClient, fake: FakeBotAPI, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    set_ = await call(http, "setWebhook", url=url, secret_token="s3cret_token-1")
    assert (set_["result"], set_["description"]) == (True, "Webhook was set")
    ben = fake.add_user(BEN, "Ben")
    await ben.send_text("via webhook")
    await fake.wait_for(lambda: hook.received)
    update, secret = hook.received[0]
    assert (update["message"]["text"], secret) == ("via webhook", "s3cret_token-1")
    assert [d.status for d in fake.webhook_deliveries] == [500, 500, 200]
    info = (await call(http, "getWebhookInfo"))["result"]
    assert (info["url"], info["pending_update_count"]) == (url, 0)
    assert "500" in info["last_error_message"]
    assert error(await call(http, "getUpdates"))[0] == 409
    assert await fake.post_update_to_webhook(update, secret="wrong") == 403
    assert await fake.post_update_to_webhook(update) == 200
    assert [u for u, _ in hook.received] == [update, update]
    deleted = await call(http, "deleteWebhook")
    assert deleted["description"] == "Webhook was deleted"
    await ben.send_text("back to polling")
    polled = (await call(http, "getUpdates"))["result"]
    assert [u["message"]["text"] for u in polled] == ["back to polling"]


async def test_a_webhook_that_keeps_failing_drops_the_update(
    http: httpx.AsyncClient, fake: FakeBotAPI, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    await call(http, "setWebhook", url=url)  # no secret: the receiver refuses with 403
    ben = fake.add_user(BEN, "Ben")
    await ben.send_text("lost")
    await fake.wait_for(lambda: fake.webhook_dropped)
    assert [d.status for d in fake.webhook_deliveries] == [403] * (fake.webhook_retries + 1)
    assert hook.received == []


async def test_webhook_settings_are_validated(http: httpx.AsyncClient) -> None:
    assert error(await call(http, "setWebhook", url="http://example.org/hook")) == (
        400,
        "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
    )
    bad_secret = await call(http, "setWebhook", url="https://example.org/h", secret_token="a b")
    assert error(bad_secret) == (400, "Bad Request: secret token contains unallowed characters")
    assert (await call(http, "getWebhookInfo"))["result"]["url"] == ""


# Rate limits -----------------------------------------------------------------------------


async def test_per_chat_and_overall_limits_answer_429() -> None:
    limits = RateLimits(overall_per_second=3, per_chat_per_second=1, per_group_per_minute=2)
    async with (
        FakeBotAPI(limits=limits) as fake,
        httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/") as http,
    ):
        users = [fake.add_user(2000 + i, f"U{i}", has_started=True) for i in range(4)]
        assert (await call(http, "sendMessage", chat_id=2000, text="1"))["ok"]
        too_fast = await call(http, "sendMessage", chat_id=2000, text="2")
        assert error(too_fast) == (429, "Too Many Requests: retry after 1")
        assert too_fast["parameters"] == {"retry_after": 1}
        assert (await call(http, "sendMessage", chat_id=2001, text="1"))["ok"]
        assert (await call(http, "sendMessage", chat_id=2002, text="1"))["ok"]
        assert error(await call(http, "sendMessage", chat_id=2003, text="1"))[0] == 429
        violations = fake.rate_limit_violations
        assert (violations.requests, violations.per_chat, violations.overall) == (2, 1, 1)
        assert violations.by_chat == {2000: 1, 2003: 1}
        assert [len(u.messages) for u in users] == [1, 1, 1, 0]


def test_the_window_slides_with_the_loop_clock() -> None:
    now = [100.0]
    limiter = RateLimiter(
        RateLimits(overall_per_second=30, per_chat_per_second=1, per_group_per_minute=2),
        lambda: now[0],
    )
    assert limiter.admit(-5) is None
    now[0] += 1.0
    assert limiter.admit(-5) is None
    now[0] += 1.0
    assert limiter.admit(-5) == 58  # the third group message within a minute
    now[0] += 58.0
    assert limiter.admit(-5) is None
    assert limiter.violations.per_group == 1


async def test_unenforced_limits_only_count() -> None:
    async with (
        FakeBotAPI(limits=RateLimits(enforce=False)) as fake,
        httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/") as http,
    ):
        fake.add_user(ANA, "Ana", has_started=True)
        for _ in range(3):
            assert (await call(http, "sendMessage", chat_id=ANA, text="burst"))["ok"]
        assert fake.rate_limit_violations.per_chat == 2


# Faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "description"),
    [
        ("429", 429, "Too Many Requests: retry after 7"),
        ("403", 403, "Forbidden: bot was blocked by the user"),
        ("5xx", 502, "Bad Gateway"),
        ("400", 400, "Bad Request: injected fault"),
    ],
)
async def test_injected_faults_answer_without_sending(
    http: httpx.AsyncClient,
    fake: FakeBotAPI,
    ana: FakeUser,
    kind: Any,
    status: int,
    description: str,
) -> None:
    fake.inject(method="sendMessage", kind=kind, times=2, retry_after=7)
    for _ in range(2):
        assert error(await call(http, "sendMessage", chat_id=ANA, text="x")) == (
            status,
            description,
        )
    assert (await call(http, "sendMessage", chat_id=ANA, text="through"))["ok"]
    assert [m.text for m in ana.messages] == ["through"]
    assert [f.kind for f in fake.faults.fired] == [kind, kind]


async def test_faults_can_target_one_chat(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    ben = fake.add_user(BEN, "Ben", has_started=True)
    fake.inject(method=None, chat_id=BEN, kind="403")
    assert (await call(http, "sendMessage", chat_id=ANA, text="to Ana"))["ok"]
    assert error(await call(http, "sendChatAction", chat_id=BEN, action="typing"))[0] == 403
    assert (await call(http, "sendMessage", chat_id=BEN, text="to Ben"))["ok"]
    assert [m.text for m in ben.messages] == ["to Ben"]


async def test_a_timeout_holds_the_answer_and_drops_the_send(
    fake: FakeBotAPI, ana: FakeUser
) -> None:
    fake.inject(method="sendMessage", kind="timeout")
    async with httpx.AsyncClient(
        base_url=f"{fake.base_url}{fake.token}/", timeout=httpx.Timeout(5.0, read=0.05)
    ) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("sendMessage", json={"chat_id": ANA, "text": "lost"})
    call_ = fake.calls_of("sendMessage")[0]
    await fake.wait_for(lambda: call_.status)
    assert call_.status == 502
    assert ana.messages == []


async def test_a_timeout_can_still_deliver_the_send(fake: FakeBotAPI, ana: FakeUser) -> None:
    fake.inject(method="sendMessage", kind="timeout", timeout_applies=True, delay=0.2)
    async with httpx.AsyncClient(
        base_url=f"{fake.base_url}{fake.token}/", timeout=httpx.Timeout(5.0, read=0.05)
    ) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("sendMessage", json={"chat_id": ANA, "text": "delivered anyway"})
    message = await ana.wait_for_message()
    assert message.text == "delivered anyway"


async def test_random_faults_are_reproducible_with_a_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        async with (
            FakeBotAPI(timeout_delay=0.0) as fake,
            httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/") as http,
        ):
            fake.add_user(ANA, "Ana", has_started=True)
            fake.set_fault_rates(server_error=0.3, timeout=0.1, too_many_requests=0.2, seed=seed)
            result = []
            for i in range(30):
                response = await http.post("sendMessage", json={"chat_id": ANA, "text": str(i)})
                result.append(response.status_code)
            return result

    first, again = await statuses(7), await statuses(7)
    assert first == again
    assert {200, 429, 502} <= set(first)


# Played users ----------------------------------------------------------------------------


async def test_users_send_commands_and_replies_like_telegram_clients(
    http: httpx.AsyncClient, fake: FakeBotAPI
) -> None:
    clock = ManualClock(datetime(2025, 3, 1, 9, 30, tzinfo=UTC))
    async with FakeBotAPI(clock=clock) as dated:
        ben = dated.add_user(BEN, "Ben", username="benj")
        command = await ben.send_command("start", "INVITE42")
        assert command.date == int(clock.now().timestamp())
    update = Update.de_json(dated.updates[0], None)
    assert update.message is not None
    assert update.message.text == "/start INVITE42"
    assert [e.type for e in update.message.entities] == ["bot_command"]
    assert update.effective_user is not None and update.effective_chat is not None
    assert (update.effective_user.username, update.effective_chat.type) == ("benj", "private")

    ana = fake.add_user(ANA, "Ana")
    await ana.send_text("/checkin now")
    sent = await call(http, "sendMessage", chat_id=ANA, text="How are you?")
    question = ana.messages[0]
    assert question.message_id == sent["result"]["message_id"]
    answer = await ana.reply_to(question, "Tired")
    update = Update.de_json(fake.updates[-1], None)
    assert update.message is not None and update.message.reply_to_message is not None
    assert update.message.reply_to_message.text == "How are you?"
    assert answer.reply_to_message_id == question.message_id
    first_entities = fake.updates[0]["message"]["entities"]
    assert first_entities == [{"type": "bot_command", "offset": 0, "length": 8}]


async def test_pressing_checks_the_button_exists(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    await call(
        http,
        "sendMessage",
        chat_id=ANA,
        text="Mood?",
        reply_markup=keyboard([("Good 🙂", "m:g"), ("Low", "m:l")]),
    )
    await call(http, "sendMessage", chat_id=ANA, text="Plain")
    query = await ana.press_button("Good")
    assert (query.data, query.message_id) == ("m:g", ana.messages[0].message_id)
    update = Update.de_json(fake.updates[-1], None)
    assert update.callback_query is not None and update.callback_query.data == "m:g"
    assert update.callback_query.message is not None
    with pytest.raises(FakeUserError):
        await ana.press(ana.messages[0], "m:forged")
    with pytest.raises(FakeUserError):
        await ana.press_button("Excellent")


async def test_wait_for_message_follows_the_conversation(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    async def bot_replies() -> None:
        await call(http, "sendMessage", chat_id=ANA, text="first")
        await call(http, "sendMessage", chat_id=ANA, text="second")

    await ana.send_text("hi")
    replying = asyncio.create_task(bot_replies())
    assert (await ana.wait_for_message()).text == "first"
    assert (await ana.wait_for_message()).text == "second"
    await replying
    assert (await ana.wait_for_message(lambda m: m.text == "first", after=0)).text == "first"
    with pytest.raises(AssertionError, match="got no matching bot message"):
        await ana.wait_for_message(timeout=0.05)
    assert [c.method for c in fake.calls] == ["sendMessage", "sendMessage"]
    assert all(c.ok and c.chat_id == ANA for c in fake.calls)
    assert [m.text for m in fake.sent_to(ANA)] == ["first", "second"]


async def test_a_modified_client_can_forge_presses_and_send_what_apps_refuse(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    await call(http, "sendMessage", chat_id=ANA, text="Plain")
    query = await ana.press_forged(ana.messages[0], "1|del|7|yes")
    assert (query.data, query.user_id) == ("1|del|7|yes", ANA)
    assert query.message_id == ana.messages[0].message_id
    assert fake.updates[-1]["callback_query"]["data"] == "1|del|7|yes"
    long = "é" * 5000
    with pytest.raises(ValueError):
        await ana.send_text(long)
    assert (await ana.send_raw(long)).text == long
    await ana.send_raw("/start x", entities=[])
    assert fake.updates[-1]["message"].get("entities", []) == []
    await ana.send_raw("/start x")
    assert fake.updates[-1]["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 6}
    ]


async def test_an_upgraded_group_refuses_every_call_by_its_old_id_and_is_read_only(
    http: httpx.AsyncClient, fake: FakeBotAPI, ana: FakeUser
) -> None:
    ben = fake.add_user(BEN, "Ben")
    group = fake.add_group(-2001, "Us two", members=(ana, ben))
    sent = await call(http, "sendMessage", chat_id=group.id, text="Welcome")
    supergroup = await group.upgrade_to_supergroup(-1002001, by=ana)
    services = [u["message"] for u in fake.updates[-2:]]
    assert [(m["chat"]["id"], m.get("migrate_to_chat_id")) for m in services] == [
        (-2001, -1002001),
        (-1002001, None),
    ]
    assert services[1]["migrate_from_chat_id"] == -2001
    message_id = sent["result"]["message_id"]
    migrated = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1002001},
    }
    assert await call(http, "sendMessage", chat_id=group.id, text="Still here?") == migrated
    assert await call(http, "deleteMessage", chat_id=group.id, message_id=message_id) == migrated
    assert await call(http, "getChat", chat_id=group.id) == migrated
    assert (await call(http, "sendMessage", chat_id=supergroup.id, text="Hello again"))["ok"]
    assert supergroup.member_ids == [ANA, BEN] and supergroup.type == "supergroup"
    with pytest.raises(FakeUserError, match="read-only"):
        await ana.send_in_group(group, "anyone?")


# Through python-telegram-bot -------------------------------------------------------------


# PTB itself warns about its own RetryAfter.retry_after type change when raising it.
@pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")
async def test_ptb_bot_talks_to_the_fake(fake: FakeBotAPI, ana: FakeUser) -> None:
    bot = PTBBot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url)
    async with bot:
        me = await bot.get_me()
        assert me.username == "dyad_test_bot"
        updates = await bot.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "/start"
        sent = await bot.send_message(
            ANA,
            "<b>Welcome</b>, Ana",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Begin", callback_data="go")]]
            ),
        )
        assert sent.text_html == "<b>Welcome</b>, Ana"
        query = await ana.press_button("Begin")
        updates = await bot.get_updates(offset=updates[-1].update_id + 1)
        assert [u.callback_query.data for u in updates if u.callback_query] == ["go"]
        assert await bot.answer_callback_query(query.id, text="Let's go") is True
        edited = await bot.edit_message_text("Started", chat_id=ANA, message_id=sent.message_id)
        assert not isinstance(edited, bool) and edited.text == "Started"
        document = await bot.send_document(ANA, b"a,b\n1,2\n", filename="scores.csv")
        assert document.document is not None and document.document.file_name == "scores.csv"
        await bot.set_my_commands(
            [BotCommand("checkin", "Check in")], scope=BotCommandScopeAllPrivateChats()
        )
        commands = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats())
        assert [c.command for c in commands] == ["checkin"]
        assert await bot.delete_message(ANA, sent.message_id) is True
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await bot.delete_message(ANA, sent.message_id)
        fake.inject("sendMessage", kind="429", retry_after=3)
        with pytest.raises(RetryAfter):
            await bot.send_message(ANA, "flood")
        fake.inject("sendMessage", kind="5xx")
        with pytest.raises(NetworkError):
            await bot.send_message(ANA, "gateway")
        await ana.block_bot()
        with pytest.raises(Forbidden):
            await bot.send_message(ANA, "blocked")
    assert query.answer_text == "Let's go"
    assert [m.text for m in ana.visible_messages] == [""]
    assert ana.messages[1].document is not None
    assert ana.messages[1].document.content == b"a,b\n1,2\n"


async def test_a_ptb_application_runs_a_conversation_by_polling(fake: FakeBotAPI) -> None:
    blocked: list[int] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        assert update.effective_user is not None
        args = " ".join(context.args or [])
        await update.effective_message.reply_html(
            f"Hi <b>{update.effective_user.first_name}</b> ({args})",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Done", callback_data="done")]]
            ),
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Noted")
        await query.edit_message_text("Thanks!")

    async def member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.my_chat_member is not None
        if update.my_chat_member.new_chat_member.status == "kicked":
            blocked.append(update.my_chat_member.chat.id)

    app = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(ChatMemberHandler(member, ChatMemberHandler.MY_CHAT_MEMBER))
    ana = fake.add_user(ANA, "Ana")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1)
        await ana.send_command("start", "TOKEN1")
        greeting = await ana.wait_for_message()
        assert (greeting.text, greeting.raw_text) == ("Hi Ana (TOKEN1)", "Hi <b>Ana</b> (TOKEN1)")
        query = await ana.press_button("Done")
        await fake.wait_for(lambda: query.answered and ana.messages[0].edits)
        await ana.block_bot()
        await fake.wait_for(lambda: blocked)
        await app.updater.stop()
        await app.stop()
    assert (query.answer_text, ana.messages[0].text, ana.messages[0].reply_markup) == (
        "Noted",
        "Thanks!",
        None,
    )
    assert blocked == [ANA]
