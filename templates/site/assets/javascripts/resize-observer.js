/* A same-origin stand-in for ResizeObserver on browsers that lack it (older phones).
   Material for MkDocs would otherwise fetch a polyfill from a CDN. Reports each observed
   element's size on load and whenever the window is resized; enough for the theme's
   header and sidebar measurements. */
(function () {
  if (typeof window.ResizeObserver !== "undefined") return;
  function SizeWatcher(callback) {
    this.callback = callback;
    this.targets = [];
    var self = this;
    this.listener = function () { self.report(); };
  }
  SizeWatcher.prototype.report = function () {
    var entries = this.targets.map(function (target) {
      return { target: target, contentRect: target.getBoundingClientRect() };
    });
    if (entries.length) this.callback(entries, this);
  };
  SizeWatcher.prototype.observe = function (target) {
    if (this.targets.indexOf(target) !== -1) return;
    this.targets.push(target);
    if (this.targets.length === 1) window.addEventListener("resize", this.listener);
    var self = this;
    window.setTimeout(function () { self.report(); }, 0);
  };
  SizeWatcher.prototype.unobserve = function (target) {
    this.targets = this.targets.filter(function (t) { return t !== target; });
    if (!this.targets.length) window.removeEventListener("resize", this.listener);
  };
  SizeWatcher.prototype.disconnect = function () {
    this.targets = [];
    window.removeEventListener("resize", this.listener);
  };
  window.ResizeObserver = SizeWatcher;
})();
