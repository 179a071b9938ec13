// dlmath: filter the claims of the errata appendix by report and by verdict.
// Each claim is a <div class="errata-claim report-NNN verdict-V">; the page has two <select>s.
document.addEventListener("DOMContentLoaded", function () {
  var report = document.getElementById("errata-report");
  var verdict = document.getElementById("errata-verdict");
  var shown = document.getElementById("errata-shown");
  if (!report || !verdict) { return; }
  function apply() {
    var n = 0;
    document.querySelectorAll("div.errata-claim").forEach(function (el) {
      var ok = (report.value === "all" || el.classList.contains("report-" + report.value)) &&
               (verdict.value === "all" || el.classList.contains("verdict-" + verdict.value));
      el.classList.toggle("hidden-by-filter", !ok);
      if (ok) { n += 1; }
    });
    if (shown) { shown.textContent = n + (n === 1 ? " claim shown" : " claims shown"); }
  }
  report.addEventListener("change", apply);
  verdict.addEventListener("change", apply);
  apply();
});
