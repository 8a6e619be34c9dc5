// Progressive enhancement only: every page works without this file.
// An element with data-refresh="URL" data-every="seconds" is replaced by what URL returns, every
// few seconds while the tab is visible. Polling waits as long as the server asks after a 429
// (Retry-After), and stops for good once the session has ended or the page is gone.
(function () {
  "use strict";

  function refresh(element) {
    var every = Math.max(2, Number(element.dataset.every) || 5) * 1000;
    var shown = element.innerHTML.trim();

    function openDetails() {
      return Array.prototype.map.call(element.querySelectorAll("details"), function (d) { return d.open; });
    }

    function show(html) {
      var open = openDetails();
      shown = html;
      element.innerHTML = html;  // our own server-rendered, escaped markup
      element.querySelectorAll("details").forEach(function (d, i) { d.open = Boolean(open[i]); });
    }

    function tick(delay) {
      setTimeout(function () {
        var next = every;
        var asked = document.hidden ? Promise.resolve() : fetch(element.dataset.refresh, {
          credentials: "same-origin", redirect: "manual"
        }).then(function (response) {
          if (response.status === 429) {
            next = Math.max(every, (Number(response.headers.get("Retry-After")) || 60) * 1000);
            return undefined;
          }
          if (!response.ok) {  // signed out (a redirect), gone (404), refused: stop
            next = null;
            return undefined;
          }
          return response.text().then(function (html) {
            if (html.trim() !== shown) { show(html.trim()); }
          });
        });
        asked.catch(function () { /* offline for a moment: try again later */ }).then(function () {
          if (next !== null) { tick(next); }
        });
      }, delay);
    }

    tick(every);
  }

  document.querySelectorAll("[data-refresh]").forEach(refresh);
}());
