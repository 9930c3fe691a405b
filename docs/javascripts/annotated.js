// Symbols linked to code: pointing at a symbol in the math, or at a variable in the code, highlights
// every element of the page that stands for the same thing (they share a data-sym attribute). On a
// touch screen a tap pins the highlight; a second tap, or a tap elsewhere, clears it.
(function () {
  var pinned = null;

  function highlight(symbol) {
    document.querySelectorAll(".ao-sym-on").forEach(function (element) {
      element.classList.remove("ao-sym-on");
    });
    if (!symbol) return;
    document.querySelectorAll('[data-sym="' + symbol + '"]').forEach(function (element) {
      element.classList.add("ao-sym-on");
    });
  }

  function symbolOf(target) {
    var element = target && target.closest ? target.closest("[data-sym]") : null;
    return element ? element.getAttribute("data-sym") : null;
  }

  document.addEventListener("mouseover", function (event) {
    if (pinned === null) highlight(symbolOf(event.target));
  });
  document.addEventListener("click", function (event) {
    var symbol = symbolOf(event.target);
    pinned = symbol === pinned ? null : symbol;
    highlight(pinned);
  });

  // Long lines of code: wrapped by default, so nothing is cut off; a button switches a page to
  // sideways scrolling, which keeps the code's own indentation, and remembers the choice.
  var KEY = "ao-code-wrap";
  function apply(wrap) {
    document.body.classList.toggle("ao-nowrap", !wrap);
    document.querySelectorAll(".ao-wrap-toggle").forEach(function (button) {
      button.setAttribute("aria-pressed", String(wrap));
      button.textContent = wrap ? "Long lines: wrapped" : "Long lines: scroll";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var annotated = document.querySelector(".ao-annotated");
    if (!annotated) return;
    var button = document.createElement("button");
    button.className = "ao-wrap-toggle md-button";
    button.type = "button";
    annotated.parentNode.insertBefore(button, annotated);
    var wrap = window.localStorage.getItem(KEY) !== "scroll";
    button.addEventListener("click", function () {
      wrap = !wrap;
      window.localStorage.setItem(KEY, wrap ? "wrap" : "scroll");
      apply(wrap);
    });
    apply(wrap);
  });

  // A display formula wider than its column is set in smaller type until it fits (down to half of
  // the text's size); only a formula wider still scrolls sideways.
  var SIZE = 1.1;
  function fitFormulas() {
    document.querySelectorAll(".md-typeset .katex-display").forEach(function (display) {
      var formula = display.querySelector(".katex");
      if (!formula) return;
      formula.style.fontSize = "";
      var available = display.clientWidth;
      var needed = display.scrollWidth;
      if (available > 0 && needed > available + 1) {
        formula.style.fontSize = (SIZE * Math.max(0.5, (available - 2) / needed)) + "em";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", fitFormulas);
  window.addEventListener("load", fitFormulas);
  window.addEventListener("resize", fitFormulas);
  if (document.fonts && document.fonts.ready) document.fonts.ready.then(fitFormulas);

  // Search: a word typed whole weighs more than the longer words it begins. The theme's search looks
  // for every word as a prefix ("adam" finds adam, adamax, adamw), and a page whose title holds two of
  // those (Adamax's "Adam with the infinity norm") outranked the page named by the word itself. Each
  // plain word of a query goes to the search as itself, boosted, and as the prefix it was.
  var QUERY = 2;
  var WHOLE_WORD_BOOST = 20;
  function wholeWordsFirst(query) {
    return query.split(/\s+/).map(function (word) {
      return /^[A-Za-z0-9]+$/.test(word) ? word + "^" + WHOLE_WORD_BOOST + " " + word : word;
    }).join(" ");
  }
  var post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (message) {
    if (message && message.type === QUERY && typeof message.data === "string") {
      arguments[0] = {type: QUERY, data: wholeWordsFirst(message.data)};
    }
    return post.apply(this, arguments);
  };
})();
