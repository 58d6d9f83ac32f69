"""`dyad demo --web` serves the check-in page on loopback with links a browser can open."""

from __future__ import annotations

import asyncio
import io
import re

import aiohttp

from bot.demo import run_web_demo
from tests.web.flows import fragment


async def test_the_web_demo_prints_a_working_link_for_each_partner() -> None:
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(run_web_demo(port=0, out=out, stop=stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while "Ctrl-C" not in out.getvalue():
        assert not task.done(), out.getvalue()
        assert loop.time() < deadline, "the demo printed no links"
        await asyncio.sleep(0.05)
    links = dict(re.findall(r"^(Jordan|Marta): (http://127\.0\.0\.1:\d+/app/\S+)$",
                            out.getvalue(), re.MULTILINE))  # fmt: skip
    assert set(links) == {"Jordan", "Marta"}
    async with aiohttp.ClientSession() as http:
        for name, link in links.items():
            page = link.split("#")[0]
            async with http.get(page) as shell:
                assert shell.status == 200
            init = fragment(link)["tgWebAppData"]
            body = {"init_data": init, "d": page.rsplit("=", 1)[1]}
            async with http.post(page.split("?")[0], data=body) as response:
                html = await response.text()
                assert response.status == 200, (name, html[:300])
                assert 'form id="checkin"' in html
                assert ('lang="es"' in html) == (name == "Marta")
    stop.set()
    await asyncio.wait_for(task, 30)
    assert "=== Jordan's chat" in out.getvalue()
