// Models page: calibration and feature-importance charts, retrain buttons with live progress.
(function () {
  "use strict";
  // The figures come whole from the server (palette and layout from the shared charts module).
  const charts = JSON.parse(document.getElementById("model-charts").textContent);
  Object.entries(charts).forEach(([kind, figures]) => {
    Object.entries(figures).forEach(([name, figure]) => {
      const target = document.getElementById(name + "-" + kind);
      if (target) Plotly.newPlot(target, figure.data, figure.layout, { displayModeBar: false, responsive: true });
    });
  });

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function render(box, run) {
    box.dataset.run = run.id;
    box.innerHTML = '<span class="badge ' + run.state + '">' + run.state + '</span> <span class="run-stage">' +
      run.stage + '</span><div class="progress"><div class="bar" style="width:' + run.progress + '%"></div></div>' +
      (run.error ? '<div class="msg error"></div>' : "");
    if (run.error) box.querySelector(".msg").textContent = run.error;
  }

  function poll(box) {
    fetch("/api/insights/runs/" + box.dataset.run + "/", { credentials: "same-origin" })
      .then((r) => r.json())
      .then((run) => {
        render(box, run);
        if (run.state === "queued" || run.state === "running") setTimeout(() => poll(box), 1000);
        else if (run.state === "succeeded") window.location.reload();
        else { const b = document.querySelector('[data-retrain="' + box.dataset.kind + '"]'); if (b) b.disabled = false; }
      })
      .catch(() => setTimeout(() => poll(box), 3000));
  }

  document.querySelectorAll("[data-retrain]").forEach((button) => {
    button.addEventListener("click", () => {
      const kind = button.dataset.retrain;
      const box = document.querySelector('.retrain-progress[data-kind="' + kind + '"]');
      button.disabled = true;
      fetch("/api/insights/models/" + kind + "/retrain/", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() },
      }).then((r) => r.json().then((body) => ({ ok: r.ok, body })))
        .then(({ ok, body }) => {
          if (ok) { render(box, body); poll(box); return; }
          box.innerHTML = '<div class="msg error"></div>';
          box.querySelector(".msg").textContent = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
          button.disabled = false;
        });
    });
  });

  document.querySelectorAll(".retrain-progress[data-run]").forEach((box) => {
    if (box.querySelector(".badge.queued, .badge.running")) poll(box);
  });
})();
