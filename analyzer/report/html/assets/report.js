"use strict";
// Open the finding or walk a link points at (a closed <details> hides its body), and
// filter the nodes table, findings and drawing by what is typed in the search box.
(function () {
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    // the target and every closed section around it
    for (var node = id ? document.getElementById(id) : null; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var box = document.getElementById("search");
  if (!box) { return; }
  box.addEventListener("input", function () {
    var words = box.value.trim().toLowerCase();
    if (words) {
      document.querySelectorAll("details.section").forEach(function (section) { section.open = true; });
    }
    document.querySelectorAll("table.searchable tbody tr, details.finding").forEach(function (row) {
      var hit = !words || row.textContent.toLowerCase().indexOf(words) >= 0;
      row.classList.toggle("hidden", !hit);
    });
    document.querySelectorAll("g.node").forEach(function (node) {
      var hit = words && node.textContent.toLowerCase().indexOf(words) >= 0;
      node.classList.toggle("found", !!hit);
    });
  });
})();
