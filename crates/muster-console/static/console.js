// Muster console: every instant (<time datetime="...Z">) is shown in the viewer's time zone,
// with the UTC time on hover. The zone is the browser's, or the one chosen on the Settings
// page (kept in this browser's localStorage as "muster-tz"). Pages work without it: the
// server renders every time in UTC.
(function () {
  "use strict";
  var KEY = "muster-tz";

  function zone() {
    try {
      var chosen = window.localStorage.getItem(KEY);
      if (chosen) {
        new Intl.DateTimeFormat("en-GB", { timeZone: chosen });
        return chosen;
      }
    } catch (e) { /* an unknown zone or no storage: the browser's */ }
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // "2026-12-24 19:00:00 JST": the same shape as the server's UTC text.
  function local(date, tz) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
      timeZoneName: "short"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" +
      parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  }

  function localise(root) {
    var tz = zone();
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var iso = t.getAttribute("datetime");
      if (iso.indexOf("T") < 0 || t.hasAttribute("data-utc")) { continue; } // dates, or done
      var date = new Date(iso);
      if (isNaN(date.getTime())) { continue; }
      t.setAttribute("data-utc", t.textContent);
      t.title = t.textContent;
      t.textContent = local(date, tz);
    }
  }

  function settings() {
    var form = document.getElementById("tz-form");
    if (!form) { return; }
    var input = document.getElementById("tz-choice");
    var shown = document.getElementById("tz-current");
    try { input.value = window.localStorage.getItem(KEY) || ""; } catch (e) { /* none */ }
    shown.textContent = zone();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var value = input.value.trim();
      var error = document.getElementById("tz-error");
      if (value) {
        try { new Intl.DateTimeFormat("en-GB", { timeZone: value }); } catch (e) {
          error.textContent = value + " is not a time zone this browser knows (e.g. Europe/Berlin).";
          error.hidden = false;
          input.setAttribute("aria-invalid", "true");
          return;
        }
        window.localStorage.setItem(KEY, value);
      } else {
        window.localStorage.removeItem(KEY);
      }
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localise(document); settings(); });
  document.addEventListener("htmx:afterSwap", function (ev) { localise(ev.target); });
})();
