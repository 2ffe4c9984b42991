// Client-side helpers for the fixture's poll pages. The file is large
// enough that the build's compressed variants (poll.js.gz) are worth
// keeping, which the install tests check.
(function () {
  "use strict";

  function slugify(text) {
    return text
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 80);
  }

  function suggestSlug(titleInput, slugInput) {
    var edited = slugInput.value !== "";
    slugInput.addEventListener("input", function () {
      edited = slugInput.value !== "";
    });
    titleInput.addEventListener("input", function () {
      if (!edited) {
        slugInput.value = slugify(titleInput.value);
      }
    });
  }

  function countChoices(list) {
    var counts = {};
    Array.prototype.forEach.call(list.querySelectorAll("[data-choice]"), function (item) {
      var choice = item.getAttribute("data-choice");
      counts[choice] = (counts[choice] || 0) + 1;
    });
    return counts;
  }

  function renderCounts(list, target) {
    var counts = countChoices(list);
    var names = Object.keys(counts).sort();
    target.textContent = "";
    names.forEach(function (name) {
      var row = document.createElement("li");
      row.textContent = name + ": " + counts[name];
      target.appendChild(row);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var title = document.querySelector("input[name=title]");
    var slug = document.querySelector("input[name=slug]");
    if (title && slug) {
      suggestSlug(title, slug);
    }
    var list = document.querySelector("[data-choices]");
    var summary = document.querySelector("[data-summary]");
    if (list && summary) {
      renderCounts(list, summary);
    }
  });
})();
