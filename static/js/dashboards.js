// Dashboard pages: switch dashboards, follow a refresh's progress and reload when it is done.
(function () {
  "use strict";
  const select = document.querySelector(".dashboard-switch");
  if (select) {
    select.addEventListener("change", () => { window.location.href = select.dataset.base + select.value + "/"; });
  }
  const box = document.querySelector(".dashboard-refresh");
  if (!box || box.hidden) return;
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .then((d) => {
        box.querySelector(".refresh-state").textContent = d.refresh.state;
        box.querySelector(".refresh-count").textContent = d.refresh.done + " of " + d.refresh.total + " tiles";
        box.querySelector(".bar").style.width = (d.refresh.total ? (100 * d.refresh.done) / d.refresh.total : 0) + "%";
        if (d.refresh.state === "queued" || d.refresh.state === "running") setTimeout(poll, 1500);
        else window.location.reload();
      })
      .catch(() => setTimeout(poll, 4000));
  }
  setTimeout(poll, 1000);
})();
