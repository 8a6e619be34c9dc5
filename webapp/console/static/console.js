// Progressive enhancement only: every page works without this file.
// An element with data-refresh="URL" data-every="seconds" is replaced by what URL returns, every
// few seconds, while the tab is visible; polling stops when the session has ended.
(function () {
  "use strict";
  document.querySelectorAll("[data-refresh]").forEach(function (element) {
    var every = Math.max(2, Number(element.dataset.every) || 5) * 1000;
    var shown = element.innerHTML.trim();
    var timer = setInterval(function () {
      if (document.hidden) { return; }
      fetch(element.dataset.refresh, {credentials: "same-origin", redirect: "manual"}).then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401 || response.status === 404) {
          clearInterval(timer);
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (typeof html === "string" && html.trim() !== shown) {
          shown = html.trim();
          element.innerHTML = shown;  // our own server-rendered, escaped markup
        }
      }).catch(function () { /* offline for a moment: the next tick tries again */ });
    }, every);
  });
}());
