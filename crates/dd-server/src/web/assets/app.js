// DeepDecipher's page script: token values on hover and focus, the context window around the max
// token, the theme switch and keyboard navigation. Pages work without it; it only adds.
(function () {
  'use strict';
  var root = document.documentElement;

  function tokenValues(ex) {
    if (!ex._values) ex._values = (ex.getAttribute('data-a') || '').split(' ');
    return ex._values;
  }

  function describe(ex, index) {
    var token = ex.children[index];
    return JSON.stringify(token.textContent) + '  ' + (tokenValues(ex)[index] || '') + '  (position ' + index + ')';
  }

  function showTip(tip, ex, index) {
    var token = ex.children[index];
    if (!token) return;
    tip.textContent = describe(ex, index);
    tip.hidden = false;
    var box = token.getBoundingClientRect();
    tip.style.left = (window.scrollX + box.left) + 'px';
    tip.style.top = (window.scrollY + box.bottom + 4) + 'px';
  }

  function applyWindow(before) {
    var after = 8;
    document.querySelectorAll('.ex[data-m]').forEach(function (ex) {
      // The visitor's text and the simulations beside their true activations are shown whole.
      if (ex.id === 'live' || ex.closest('.simulation')) return;
      var m = parseInt(ex.getAttribute('data-m'), 10);
      var tokens = ex.children;
      for (var i = 0; i < tokens.length; i++) {
        var outside = before >= 0 && (i < m - before || i > m + after);
        tokens[i].classList.toggle('hid', outside);
      }
    });
  }

  function init() {
    var themeButton = document.getElementById('theme');
    if (themeButton) themeButton.addEventListener('click', function () {
      var dark = root.dataset.theme ? root.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
      root.dataset.theme = dark ? 'light' : 'dark';
      try { localStorage.setItem('dd-theme', root.dataset.theme); } catch (e) {}
    });

    var tip = document.getElementById('tip');
    var status = document.getElementById('status');
    document.addEventListener('mouseover', function (event) {
      var token = event.target;
      if (token.tagName !== 'I' || !token.parentNode.classList || !token.parentNode.classList.contains('ex')) {
        if (tip) tip.hidden = true;
        return;
      }
      var ex = token.parentNode;
      showTip(tip, ex, Array.prototype.indexOf.call(ex.children, token));
    });

    // Keyboard: an example takes focus; arrows move a cursor over its tokens and announce each value.
    document.querySelectorAll('.ex').forEach(function (ex) {
      ex.addEventListener('focus', function () {
        var token = ex.children[ex._cursor];
        // Start at the max token, and again whenever the context window hid the cursor's token.
        if (ex._cursor === undefined || (token && token.classList.contains('hid') && !ex.classList.contains('full'))) {
          ex._cursor = parseInt(ex.getAttribute('data-m') || '0', 10);
        }
        mark(ex);
      });
      ex.addEventListener('blur', function () {
        var current = ex.querySelector('.cur');
        if (current) current.classList.remove('cur');
        if (tip) tip.hidden = true;
      });
      ex.addEventListener('keydown', function (event) {
        if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
        event.preventDefault();
        event.stopPropagation();
        var step = event.key === 'ArrowRight' ? 1 : -1;
        var next = ex._cursor + step;
        while (next >= 0 && next < ex.children.length && ex.children[next].classList.contains('hid') && !ex.classList.contains('full')) next += step;
        if (next >= 0 && next < ex.children.length) ex._cursor = next;
        mark(ex);
      });
    });
    function mark(ex) {
      var current = ex.querySelector('.cur');
      if (current) current.classList.remove('cur');
      var token = ex.children[ex._cursor];
      if (!token) return;
      token.classList.add('cur');
      showTip(tip, ex, ex._cursor);
      if (status) status.textContent = describe(ex, ex._cursor);
    }

    document.querySelectorAll('button[data-full]').forEach(function (button) {
      button.addEventListener('click', function () {
        var ex = document.getElementById(button.getAttribute('data-full'));
        var full = ex.classList.toggle('full');
        button.textContent = full ? 'around max' : 'full text';
        button.setAttribute('aria-expanded', full ? 'true' : 'false');
      });
    });

    var windowControl = document.getElementById('ctx');
    if (windowControl) {
      windowControl.addEventListener('change', function () { applyWindow(parseInt(windowControl.value, 10)); });
      applyWindow(parseInt(windowControl.value, 10));
    }

    document.addEventListener('keydown', function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var tag = (event.target.tagName || '').toLowerCase();
      if (tag === 'input' || tag === 'textarea' || tag === 'select') return;
      var link = null;
      // Arrows navigate only when nothing is focused, so they never hijack a button or a scroll.
      var onBody = event.target === document.body || event.target === document.documentElement;
      if (event.key === 'j' || (onBody && event.key === 'ArrowRight')) link = document.querySelector('link[rel=next]');
      else if (event.key === 'k' || (onBody && event.key === 'ArrowLeft')) link = document.querySelector('link[rel=prev]');
      else if (event.key === 'r') link = document.getElementById('random');
      else if (event.key === '/') {
        var search = document.getElementById('q');
        if (search) { event.preventDefault(); search.focus(); }
        return;
      }
      if (link && link.getAttribute('href')) {
        event.preventDefault();
        window.location.href = link.getAttribute('href');
      }
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
