// Injected at the end of a rendered notebook page by
// tests/test_rendered_notebooks.py: once the page has loaded, it measures
// what a student sees and writes it, as JSON, into a pre element (id parlab-check),
// which `chromium --dump-dom` then prints.
window.addEventListener('load', function () {
  var out = {images: [], textFigures: [], tracebacks: [], cutOff: [],
             height: document.documentElement.scrollHeight,
             width: document.documentElement.scrollWidth,
             viewport: window.innerWidth};
  document.querySelectorAll('.jp-OutputArea-output img').forEach(function (img) {
    var r = img.getBoundingClientRect();
    out.images.push({loaded: img.complete && img.naturalWidth > 0,
                     natural: [img.naturalWidth, img.naturalHeight],
                     shown: [r.width, r.height]});
  });
  document.querySelectorAll('.jp-OutputArea-output').forEach(function (o) {
    var text = o.innerText || '';
    if (text.indexOf('Traceback (most recent call last)') >= 0) {
      out.tracebacks.push(text.slice(0, 400));
    }
    // A figure that reached the page as its text repr instead of a picture.
    var repr = text.match(/<Figure size [^>]*>/);
    if (repr) out.textFigures.push(repr[0]);
  });
  // A table is cut off when it, or a box around it inside its cell, holds
  // more than it shows (hidden, or behind a scroll bar).
  document.querySelectorAll('.jp-OutputArea-output table').forEach(function (table) {
    for (var el = table; el && !el.classList.contains('jp-Cell'); el = el.parentElement) {
      if (el.scrollWidth > el.clientWidth + 1) {
        out.cutOff.push({table: (table.innerText || '').slice(0, 120),
                         shows: el.clientWidth, holds: el.scrollWidth});
        break;
      }
    }
  });
  var pre = document.createElement('pre');
  pre.id = 'parlab-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
