"""The console in a real headless Chromium (tests/browser.py), against the app under gunicorn and
the worker process: a person signs in, finds the customer waiting for them, replies, sees the reply
go out, gives the conversation back; every page and form, on a desktop's screen and a phone's.
Screenshots of each page are saved in artifacts/screenshots/."""
from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import needs_browser, open_browser, requested_urls, screenshot
from tests.conftest import ADMIN_TOKEN, post_as, wait_for_sent

pytestmark = needs_browser
WAIT_SECONDS = 30
PAGES = ("inbox", "dashboard", "knowledge", "settings")


def wait_for(driver, condition, what: str, seconds: float = WAIT_SECONDS):
    try:
        # An element read while the page is being replaced is stale: look again at the next poll.
        return WebDriverWait(driver, seconds, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except TimeoutException:
        screenshot(driver, "failed-" + what.replace(" ", "-"))
        raise AssertionError(f"{what}: not seen within {seconds} s on {driver.current_url}") from None


def text_of(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def sign_in(driver, base_url: str, token: str = ADMIN_TOKEN) -> None:
    driver.get(base_url + "/console/")
    wait_for(driver, lambda d: d.find_elements(By.ID, "token"), "the sign-in form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()


def submit(driver, form_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]").click()


def fits_the_screen(driver) -> bool:
    """Nothing wider than the viewport: no sideways scrolling on a phone."""
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture
def server(gunicorn_server, worker_process):
    return gunicorn_server


def test_a_person_signs_in_finds_the_handoff_replies_and_gives_it_back(server, browser, fake_twilio):
    base = server["base_url"]
    sign_in(browser, base, token="not-the-token")
    wait_for(browser, lambda d: "no es el de administración" in text_of(d), "the wrong token refused")
    screenshot(browser, "sign-in-refused")

    post_as(server, "¿Cuánto cuesta la fibra de 600?", sender="whatsapp:+34600222333")
    post_as(server, "¿Hay permanencia?", sender="whatsapp:+34600444555")
    post_as(server, "Quiero hablar con una persona, por favor")
    wait_for_sent(fake_twilio, 3)  # two answers and the handoff notice
    sign_in(browser, base)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".waiting .row.handoff"), "the waiting handoff")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".waiting .row")) == 1
    waiting = browser.find_element(By.CSS_SELECTOR, ".waiting .row.handoff")
    assert "Ana" in waiting.text and "+34600111222" in waiting.text
    assert "espera desde hace" in waiting.text
    screenshot(browser, "inbox")

    waiting.find_element(By.TAG_NAME, "a").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "reply"), "the conversation page")
    assert "Ventana de 24 h abierta" in text_of(browser)
    assert "Quiero hablar con una persona" in browser.find_element(By.ID, "live").text
    browser.find_element(By.ID, "text").send_keys("Hola, soy Marta. ¿En qué te ayudo?")
    submit(browser, "reply")
    wait_for(browser, lambda d: "Respuesta en cola" in text_of(d), "the reply queued")
    assert "Hola, soy Marta" in browser.find_element(By.ID, "live").text
    assert wait_for_sent(fake_twilio, 4)[-1]["body"] == "Hola, soy Marta. ¿En qué te ayudo?"
    # The transcript refreshes itself: the reply's tick appears without reloading the page.
    browser.execute_script("document.body.dataset.sameDocument = 'yes'")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".bubble.agent .tick:not([title=pending])"
                                                                 ":not([title=submitting])"), "the reply's tick")
    assert browser.execute_script("return document.body.dataset.sameDocument") == "yes"
    screenshot(browser, "conversation")

    submit(browser, "release")
    wait_for(browser, lambda d: "vuelve al asistente" in text_of(d), "the conversation released")
    wait_for(browser, lambda d: d.find_element(By.ID, "status").text == "abierta", "the status open")
    assert not browser.find_elements(By.ID, "release")

    browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/inbox']").click()
    wait_for(browser, lambda d: "Nadie espera a una persona" in text_of(d), "no handoff waiting any more")
    assert all(url.startswith(base) for url in requested_urls(browser))


def test_a_form_posted_without_its_csrf_token_is_refused(server, browser, fake_twilio):
    post_as(server, "Quiero hablar con una persona, por favor")
    wait_for_sent(fake_twilio, 1)  # the handoff notice
    sign_in(browser, server["base_url"])
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".waiting .row.handoff a"), "the waiting handoff")
    browser.find_element(By.CSS_SELECTOR, ".waiting .row.handoff a").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "close"), "the conversation page")
    browser.execute_script("document.querySelector('#close input[name=csrf_token]').remove()")
    submit(browser, "close")
    wait_for(browser, lambda d: "código de seguridad" in text_of(d), "the form refused")
    screenshot(browser, "csrf-refused")
    browser.back()
    browser.refresh()
    wait_for(browser, lambda d: d.find_elements(By.ID, "status"), "the conversation page again")
    assert wait_for(browser, lambda d: d.find_element(By.ID, "status").text, "the status") == "con una persona"


def test_knowledge_dashboard_and_settings_pages_work(server, browser, fake_twilio):
    post_as(server, "¿Qué tarifas de fibra tenéis?")
    wait_for_sent(fake_twilio, 1)
    sign_in(browser, server["base_url"])
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "nav"), "signed in")

    browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/knowledge']").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "chunks"), "the index status from the worker")
    assert int(browser.find_element(By.ID, "chunks").text) > 0
    browser.find_element(By.ID, "question").send_keys("¿Cuánto cuesta la fibra?")
    submit(browser, "ask")
    wait_for(browser, lambda d: d.find_elements(By.ID, "passages"), "the dry run's answer")
    assert browser.find_element(By.ID, "outcome").text in ("answered", "fallback")
    scores = [float(s.text.split()[-1]) for s in browser.find_elements(By.CSS_SELECTOR, "#passages .score")]
    assert scores and scores == sorted(scores, reverse=True)
    assert len(fake_twilio.sent_messages()) == 1  # the dry run sent nothing
    screenshot(browser, "knowledge-dry-run")
    browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/knowledge']").click()
    screenshot(browser, "knowledge")

    browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/dashboard']").click()
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart svg")) == 5, "the five charts")
    assert all(svg.get_attribute("role") == "img" for svg in browser.find_elements(By.CSS_SELECTOR, ".chart svg"))
    screenshot(browser, "dashboard")

    browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/settings']").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "temperature"), "the settings form")
    temperature = browser.find_element(By.ID, "temperature")
    temperature.clear()
    temperature.send_keys("mucho")
    submit(browser, "settings")
    wait_for(browser, lambda d: d.find_elements(By.ID, "temperature-error"), "the temperature's error")
    screenshot(browser, "settings-invalid")
    temperature = browser.find_element(By.ID, "temperature")
    temperature.clear()
    temperature.send_keys("0.4")
    submit(browser, "settings")
    wait_for(browser, lambda d: "Ajustes guardados" in text_of(d), "the settings saved")
    assert browser.find_element(By.ID, "temperature").get_attribute("value") == "0.4"
    screenshot(browser, "settings")

    browser.find_element(By.CSS_SELECTOR, "header .tools button").click()  # sign out
    wait_for(browser, lambda d: d.find_elements(By.ID, "token"), "the sign-in page after signing out")
    browser.get(server["base_url"] + "/console/inbox")
    wait_for(browser, lambda d: d.find_elements(By.ID, "token"), "the inbox closed after signing out")


def test_every_page_fits_a_phone_and_speaks_english_when_asked(server, phone_browser, fake_twilio):
    post_as(server, "Quiero hablar con una persona, por favor")
    wait_for_sent(fake_twilio, 1)  # the handoff notice
    sign_in(phone_browser, server["base_url"])
    wait_for(phone_browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".waiting .row.handoff"), "the handoff")
    for page in PAGES:
        phone_browser.get(f"{server['base_url']}/console/{page}")
        wait_for(phone_browser, lambda d: d.find_elements(By.TAG_NAME, "main"), page)
        assert fits_the_screen(phone_browser), page
        screenshot(phone_browser, f"phone-{page}")
    phone_browser.find_element(By.CSS_SELECTOR, "nav a[href='/console/inbox']").click()
    phone_browser.find_element(By.CSS_SELECTOR, ".waiting .row.handoff a").click()
    wait_for(phone_browser, lambda d: d.find_elements(By.ID, "reply"), "the conversation page")
    assert fits_the_screen(phone_browser)
    screenshot(phone_browser, "phone-conversation")
    phone_browser.find_element(By.CSS_SELECTOR, "a.language").click()
    wait_for(phone_browser, lambda d: "Reply as a person" in text_of(d), "the page in English")

    with open_browser(1280, 900, lang="en") as english:
        english.get(server["base_url"] + "/console/")
        wait_for(english, lambda d: "Sign in" in text_of(d), "the sign-in page in English")
