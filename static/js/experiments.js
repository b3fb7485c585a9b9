// Renders the plotly figures of the experiment results page (figures come as JSON scripts).
(function () {
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source || !window.Plotly) return;
    var fig = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
  });
})();
