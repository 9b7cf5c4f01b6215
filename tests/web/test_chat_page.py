"""The chat page in a real browser (Debian's chromium over CDP) against a real `vm`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.cdp import Browser
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.gateway.support import TOKEN, VmProcess
from tests.web.support import browser, shot

__all__ = ["browser"]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def page_url(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[str]:
    process = VmProcess(
        tmp_path,
        llm.base_url,
        extra=["tools.approval.require=side_effecting,privileged", "scheduler.enabled=true"],
    )
    endpoint = await process.start()
    yield endpoint.replace("ws://", "http://").removesuffix("/ws") + "/"
    if process.proc and process.proc.poll() is None:
        await process.stop()


async def sign_in(browser: Browser, url: str, token: str = TOKEN) -> None:
    await browser.goto(url)
    await browser.wait_for("!document.getElementById('signin').hidden")
    await browser.type_text("#token", token)
    await browser.press("Enter")


async def signed_in(browser: Browser, url: str) -> None:
    await sign_in(browser, url)
    await browser.wait_for("document.getElementById('conn').dataset.state === 'open'")


async def say(browser: Browser, text: str) -> None:
    await browser.type_text("#prompt", text)
    await browser.press("Enter")


LAST_ANSWER = "([...document.querySelectorAll('.msg.assistant')].at(-1)?.textContent ?? '')"
TURNS = "document.querySelectorAll('.turn').length"
LAST_STATE = "([...document.querySelectorAll('.turn .state')].at(-1)?.dataset.state ?? '')"
TITLE = "document.getElementById('session-title').textContent"


async def test_sign_in_then_a_reply_streams_and_model_html_stays_inert(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    await sign_in(browser, page_url, "wrong-token")
    assert await browser.wait_for("document.getElementById('signin-error').textContent")
    await shot(browser, "signin")
    await signed_in(browser, page_url)
    hostile = (
        "**Hello** from the model <script>window.pwned = 1</script>\n\n"
        '<img src=x onerror="window.pwned = 2"> [x](javascript:window.pwned=3) `code`'
    )
    llm.add([Reply(text=hostile, chunk=5, delay=0.01)])
    await say(browser, "hi there")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    await shot(browser, "chat")
    log = "document.getElementById('log')"
    assert await browser.evaluate(f"{log}.querySelector('strong')?.textContent") == "Hello"
    assert "<script>window.pwned = 1</script>" in await browser.evaluate(LAST_ANSWER)
    assert await browser.evaluate(f"{log}.querySelectorAll('script, img, iframe').length") == 0
    assert await browser.evaluate(f"{log}.querySelectorAll('a[href^=javascript]').length") == 0
    assert await browser.evaluate("typeof window.pwned") == "undefined"
    user = await browser.evaluate("document.querySelector('.msg.user').textContent")
    assert user == "hi there"
    # the token is nowhere the page (or a script in it) could read it back
    stored = await browser.evaluate(
        "JSON.stringify([location.href, document.cookie, {...localStorage}, {...sessionStorage}])"
    )
    assert TOKEN not in stored and "oxydra_session" not in stored
    assert await browser.evaluate("document.getElementById('cost').textContent")


async def test_an_approval_is_a_button_and_escape_cancels_a_turn(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    await signed_in(browser, page_url)
    llm.add(
        [
            Reply(
                text="Writing it.\n",
                tool_calls=[
                    Call(name="file_write", arguments={"path": "/shared/a.txt", "content": "x"})
                ],
            ),
            Reply(text="Done writing."),
        ]
    )
    await say(browser, "write a file")
    await browser.wait_for("!!document.querySelector('.approval button')")
    await shot(browser, "approval")
    card = await browser.evaluate("document.querySelector('.approval').textContent")
    assert "file_write" in card and "/shared/a.txt" in card
    assert await browser.evaluate("document.activeElement.textContent") == "Approve"
    await browser.press("Enter")  # the focused Approve button
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    assert "Done writing." in await browser.evaluate(LAST_ANSWER)
    assert await browser.evaluate("document.querySelector('details.tool summary').textContent")

    llm.add([Reply(text="word " * 400, chunk=2, delay=0.02)])
    await say(browser, "talk a lot")
    await browser.wait_for(f"TURNS === 2 && {LAST_ANSWER}.length > 10".replace("TURNS", TURNS))
    await browser.press("Escape")
    await browser.wait_for(f"{LAST_STATE} === 'cancelled'")
    assert await browser.evaluate("document.getElementById('cancel').hidden")


async def test_a_reload_mid_stream_loses_and_doubles_nothing(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    await signed_in(browser, page_url)
    words = "".join(f"w{i} " for i in range(150))
    llm.add([Reply(text=words, chunk=4, delay=0.01)])
    await say(browser, "count")
    await browser.wait_for(f"{LAST_ANSWER}.length > 40")
    await browser.reload()
    await browser.wait_for("document.getElementById('conn')?.dataset.state === 'open'")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    assert (await browser.evaluate(LAST_ANSWER)).strip() == words.strip()
    assert await browser.evaluate("document.querySelectorAll('.turn').length") == 1
    assert await browser.evaluate("document.querySelector('.msg.user').textContent") == "count"


async def one_answered_turn(browser: Browser, url: str, llm: FakeLLM) -> str:
    """Sign in, get "first answer" to "one" (the model's next reply is "second answer");
    the session's id."""
    await signed_in(browser, url)
    llm.add([Reply(text="first answer"), Reply(text="second answer")])
    await say(browser, "one")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    return str(await browser.evaluate("sessionStorage.getItem('oxydra.session')"))


async def test_switching_sessions_shows_each_ones_conversation(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    first = await one_answered_turn(browser, page_url, llm)
    await browser.click("#new-session")
    await browser.wait_for(f"sessionStorage.getItem('oxydra.session') !== {json.dumps(first)}")
    await browser.wait_for("document.querySelectorAll('.turn').length === 0")
    await say(browser, "two")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    assert "second answer" in await browser.evaluate(LAST_ANSWER)
    await browser.wait_for("document.querySelectorAll('#sessions button').length >= 2")
    await shot(browser, "sessions")
    await browser.evaluate(
        "[...document.querySelectorAll('#sessions button')]"
        ".find(b => b.getAttribute('aria-current') === 'false').click()"
    )
    await browser.wait_for(f"sessionStorage.getItem('oxydra.session') === {json.dumps(first)}")
    await browser.wait_for(f"({LAST_ANSWER}).includes('first answer')")
    assert await browser.evaluate("document.querySelectorAll('.turn').length") == 1


async def test_a_turns_trace_and_the_scheduled_jobs_are_one_click_away(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    await signed_in(browser, page_url)
    job = {
        "goal": "Say good morning",
        "cadence_type": "interval",
        "cadence_value": "3600",
        "name": "morning",
        "notification": "never",
    }
    llm.add(
        [
            Reply(text="Scheduling.\n", tool_calls=[Call(name="schedule_create", arguments=job)]),
            Reply(text="Scheduled."),
        ]
    )
    await say(browser, "remind me")
    await browser.wait_for("!!document.querySelector('.approval button')")
    await browser.click(".approval button")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    await browser.click(".turn button.small")
    await browser.wait_for("document.querySelectorAll('.waterfall .bar').length > 1")
    names = await browser.evaluate(
        "[...document.querySelectorAll('.waterfall .name')].map(n => n.textContent.trim())"
    )
    assert names[0].startswith("invoke_agent"), names
    assert any(n.startswith("execute_tool schedule_create") for n in names), names
    await browser.click("#jobs-toggle")
    await browser.wait_for("document.getElementById('jobs').textContent.includes('morning')")
    assert "no runs yet" in await browser.evaluate("document.getElementById('jobs').textContent")
    await shot(browser, "trace-and-jobs")


async def test_every_control_is_labelled_and_the_page_fits_a_phone(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    await signed_in(browser, page_url)
    llm.add([Reply(text="A short answer on a small screen.")])
    await say(browser, "hello")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    unnamed = await browser.evaluate(
        """[...document.querySelectorAll('button, input, textarea, select')]
          .filter(e => e.offsetParent !== null)
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.textContent.trim())
          .map(e => e.outerHTML)"""
    )
    assert unnamed == []
    llm.add([Reply(text="Two lines received.")])
    await browser.type_text("#prompt", "line one")
    await browser.press("Enter", shift=True)
    await browser.send("Input.insertText", {"text": "line two"})
    assert await browser.evaluate("document.getElementById('prompt').value") == "line one\nline two"
    assert await browser.evaluate(TURNS) == 1, "Shift+Enter does not send"
    await browser.press("Enter")
    await browser.wait_for(f"{TURNS} === 2 && {LAST_STATE} === 'completed'")
    sent = await browser.evaluate("[...document.querySelectorAll('.msg.user')].at(-1).textContent")
    assert sent == "line one\nline two"
    log = "document.getElementById('log')"
    assert await browser.evaluate(f"{log}.getAttribute('aria-live')") == "polite"
    assert await browser.evaluate(f"{log}.getAttribute('role')") == "log"
    await browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 780, "deviceScaleFactor": 2, "mobile": True},
    )
    await browser.wait_for("document.documentElement.clientWidth === 390")
    overflow = await browser.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, "nothing wider than the phone"
    assert await browser.evaluate(
        "document.getElementById('prompt').getBoundingClientRect().bottom <= 780"
    ), "the composer is on screen"
    await shot(browser, "phone")


async def test_a_dropped_connection_resumes_from_last_seq_without_loss_or_doubling(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    # keep a handle on the page's sockets (injected by the test, before the page's own code)
    await browser.send(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.__sockets = []; const Real = window.WebSocket;"
            "window.WebSocket = function (...a) { const s = new Real(...a);"
            " window.__sockets.push(s); return s; };"
            "window.WebSocket.prototype = Real.prototype; window.WebSocket.OPEN = Real.OPEN;"
        },
    )
    await signed_in(browser, page_url)
    words = "".join(f"d{i} " for i in range(150))
    llm.add([Reply(text=words, chunk=4, delay=0.01)])
    await say(browser, "count again")
    await browser.wait_for(f"{LAST_ANSWER}.length > 40")
    await browser.evaluate("window.__sockets.at(-1).close()")  # the network drops
    await browser.wait_for("window.__sockets.length === 2")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    assert (await browser.evaluate(LAST_ANSWER)).strip() == words.strip()
    assert await browser.evaluate(TURNS) == 1


async def test_a_session_is_renamed_archived_and_restored_from_the_page(
    browser: Browser, page_url: str, llm: FakeLLM
) -> None:
    first = await one_answered_turn(browser, page_url, llm)
    await browser.click("#rename")
    await browser.wait_for("document.activeElement?.id === 'rename-input'")
    await browser.type_text("#rename-input", "Pelican notes")
    await browser.press("Enter")
    await browser.wait_for(f"{TITLE} === 'Pelican notes'")
    listed = "[...document.querySelectorAll('#sessions li')].map(li => li.textContent)"
    await browser.wait_for(f"{listed}.some(t => t.startsWith('Pelican notes'))")

    await browser.click("#new-session")
    await browser.wait_for(f"sessionStorage.getItem('oxydra.session') !== {json.dumps(first)}")
    await say(browser, "two")
    await browser.wait_for(f"{LAST_STATE} === 'completed'")
    second = await browser.evaluate("sessionStorage.getItem('oxydra.session')")
    await browser.click("#archive")  # the open session: the page moves to the other one
    await browser.wait_for(f"sessionStorage.getItem('oxydra.session') === {json.dumps(first)}")
    await browser.wait_for(f"({LAST_ANSWER}).includes('first answer')")
    await browser.wait_for("document.querySelectorAll('#sessions li').length === 1")
    await browser.wait_for(f"{TITLE} === 'Pelican notes'")

    await browser.click("#archived-toggle")
    await browser.wait_for("document.querySelectorAll('#sessions li.archived').length === 1")
    await shot(browser, "archived")
    await browser.click("#sessions li.archived .restore")
    await browser.wait_for(
        "document.querySelectorAll('#sessions li').length === 2"
        " && document.querySelectorAll('#sessions li.archived').length === 0"
    )
    await browser.evaluate(
        "[...document.querySelectorAll('#sessions li button')]"
        ".find(b => !b.textContent.startsWith('Pelican')).click()"
    )
    await browser.wait_for(f"sessionStorage.getItem('oxydra.session') === {json.dumps(second)}")
    await browser.wait_for(f"({LAST_ANSWER}).includes('second answer')")
