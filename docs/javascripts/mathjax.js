// MathJax 3 configuration for the whole site (loaded before assets/vendor/mathjax/tex-mml-chtml.js).
//
// What gets typeset:
//   * Markdown pages: pymdownx.arithmatex (generic mode) wraps every formula in an .arithmatex element.
//   * Notebook pages: nbconvert leaves $…$ and $$…$$ as they are inside .jp-RenderedMarkdown (markdown cells) and
//     .jp-RenderedLatex (LaTeX outputs).
// Everything else in the page body (.md-container) is ignored, so a stray "$" in prose or outputs stays text. MathJax
// inherits "ignore" down the tree and a process class switches it off for the whole subtree, which is why the ignore
// class is put on the page container rather than on every element (the ".*|" trick only reaches direct text children).
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  options: {
    ignoreHtmlClass: "md-container|md-header",
    processHtmlClass: "arithmatex|jp-RenderedMarkdown|jp-RenderedLatex|widget-label",
  },
  startup: {
    ready() {
      MathJax.startup.defaultReady();
      // The Jupyter widgets manager typesets widget labels through the MathJax 2 API (MathJax.Hub.Queue):
      // forward those calls to MathJax 3.
      MathJax.Hub = {
        Queue(command) {
          const element = Array.isArray(command) ? command[2] : undefined;
          MathJax.startup.promise = MathJax.startup.promise.then(() =>
            MathJax.typesetPromise(element ? [element] : undefined));
        },
      };
    },
  },
};

// Material's instant navigation (if it is ever switched on) swaps page content without a reload: typeset again.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise && MathJax.typesetPromise) {
      MathJax.startup.promise.then(() => {
        MathJax.typesetClear();
        MathJax.texReset();
        return MathJax.typesetPromise();
      });
    }
  });
}
