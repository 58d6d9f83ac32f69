/* Dyad's Mini App pages. Served from Dyad itself (no third-party script, no inline code).
 * It opens the page from the launch's initData (the #tgWebAppData fragment), applies
 * Telegram's theme colours, keeps drafts on the server and shows the crisis resources as
 * soon as the server asks for them. Nothing is kept in the browser. */
(function () {
  "use strict";

  var TELEGRAM_WEB = "https://web.telegram.org";

  // Telegram's web events (https://core.telegram.org/api/web-events).
  function postEvent(type, data) {
    var payload = data || {};
    try {
      if (window.TelegramWebviewProxy && window.TelegramWebviewProxy.postEvent) {
        window.TelegramWebviewProxy.postEvent(type, JSON.stringify(payload));
      } else if (window.external && "notify" in window.external) {
        window.external.notify(JSON.stringify({ eventType: type, eventData: payload }));
      } else if (window.parent !== window) {
        window.parent.postMessage(JSON.stringify({ eventType: type, eventData: payload }), TELEGRAM_WEB);
      }
    } catch (ignored) {
      /* outside Telegram: nothing to tell */
    }
  }

  function applyTheme() {
    var attributes = document.body.attributes;
    for (var i = 0; i < attributes.length; i++) {
      var name = attributes[i].name;
      if (name.indexOf("data-tg-") === 0) {
        document.documentElement.style.setProperty("--" + name.slice(5), attributes[i].value);
      }
    }
  }

  function launch(form) {
    var params = new URLSearchParams(window.location.hash.slice(1));
    var initData = params.get("tgWebAppData");
    if (!initData) {
      document.getElementById("loading").hidden = true;
      document.getElementById("outside-telegram").hidden = false;
      return;
    }
    form.elements.init_data.value = initData;
    form.elements.theme.value = params.get("tgWebAppThemeParams") || "";
    // The signed data travels in the form only; the address bar and history forget it.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    form.submit();
  }

  function showCrisis() {
    var card = document.getElementById("crisis");
    if (card && card.hidden) {
      card.hidden = false;
      card.scrollIntoView({ block: "start" });
      card.focus();
    }
  }

  function followRequires(form) {
    var sets = form.querySelectorAll("fieldset[data-requires]");
    for (var i = 0; i < sets.length; i++) {
      var lead = form.elements[sets[i].getAttribute("data-requires")];
      if (lead && "value" in lead && lead.tagName === "TEXTAREA") {
        sets[i].disabled = lead.value.trim() === "";
      }
    }
  }

  // A page of answers (check-in, prompt): its draft is kept on the server as it is filled.
  function answers(form) {
    var status = document.getElementById("draft-status");
    var timer = null;
    var sending = false;
    var saving = false; // one draft request at a time: two at once would race on the server
    var again = false;

    function saveDraft() {
      timer = null;
      if (saving) {
        again = true; // saved once the request in flight has its answer
        return;
      }
      saving = true;
      var body = new URLSearchParams(new FormData(form));
      window
        .fetch(form.getAttribute("data-draft"), { method: "POST", body: body, credentials: "omit" })
        .then(function (response) {
          return response.json().then(function (answer) {
            if (!response.ok) {
              throw new Error(answer.error || "draft");
            }
            status.textContent = form.getAttribute("data-saved-text");
            if (answer.crisis) {
              showCrisis();
            }
          });
        })
        .catch(function () {
          status.textContent = form.getAttribute("data-failed-text");
        })
        .then(function () {
          saving = false;
          if (again) {
            again = false;
            saveDraft();
          }
        });
    }

    function soon(delay) {
      if (timer !== null) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(saveDraft, delay);
    }

    form.addEventListener("change", function () {
      followRequires(form);
      soon(50);
    });
    form.addEventListener("input", function () {
      followRequires(form);
      soon(2000);
    });
    form.addEventListener("submit", function (event) {
      if (sending) {
        event.preventDefault();
        return;
      }
      sending = true;
      if (timer !== null) {
        window.clearTimeout(timer);
      }
      form.querySelector("button[type=submit]").disabled = true;
    });
    followRequires(form);
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme();
    var launcher = document.getElementById("launch");
    if (launcher) {
      launch(launcher);
      return;
    }
    postEvent("web_app_ready");
    postEvent("web_app_expand");
    var form = document.querySelector("form.answers");
    if (form) {
      answers(form);
    }
    var close = document.getElementById("close");
    if (close) {
      close.addEventListener("click", function () {
        postEvent("web_app_close");
        window.close();
      });
    }
    var problem = document.getElementById("problem");
    if (problem) {
      problem.focus();
    }
  });
})();
