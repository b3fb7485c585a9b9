// Draws the plotly figures a devices page embeds with json_script as <id>-data next to div#<id>.
document.querySelectorAll('script[type="application/json"][id$="-data"]').forEach(function (node) {
  var figure = JSON.parse(node.textContent);
  var target = document.getElementById(node.id.slice(0, -5));
  Plotly.newPlot(target, figure.data, figure.layout, { displaylogo: false, responsive: true });
});
// Forms asking for confirmation before a state change (deactivate, test push).
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
