// The console's only script (no inline scripts: the pages' CSP is default-src 'self').
// Fills the reply box from a canned FAQ answer, counts characters, and asks before deleting.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var canned = document.getElementById("canned");
    var box = document.getElementById("reply-text");
    var counter = document.getElementById("reply-count");

    function count() {
      if (!box || !counter) return;
      var max = parseInt(counter.getAttribute("data-max"), 10) || 0;
      counter.textContent = box.value.length + " / " + max + " 字。";
    }

    if (canned && box) {
      canned.addEventListener("change", function () {
        var option = canned.options[canned.selectedIndex];
        var text = option ? option.getAttribute("data-text") : "";
        if (!text) return;
        if (box.value.trim() && !window.confirm("用这条常用答复替换答复框里已有的内容吗？")) {
          canned.selectedIndex = 0;
          return;
        }
        box.value = text;
        count();
        box.focus();
      });
    }
    if (box) {
      box.addEventListener("input", count);
      count();
    }

    Array.prototype.forEach.call(document.querySelectorAll("button.danger"), function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm("确定删除吗？")) event.preventDefault();
      });
    });

    // A form sent once: a second tap while the page loads would send it again.
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-sent")) {
          event.preventDefault();
          return;
        }
        form.setAttribute("data-sent", "1");
      });
    });
  });
})();
