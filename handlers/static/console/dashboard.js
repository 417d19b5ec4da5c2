// The statistics dashboard (/console/dashboard): fetches /console/dashboard/data for the period and
// region in the filter form and draws the headline numbers, the charts (Chart.js, served by the app),
// the current queue and who is on duty. No inline script or style: the console's CSP is default-src 'self'.
(function () {
  "use strict";

  var RED = "#dc2626";
  var DARK_RED = "#b91c1c";
  var GREY = "#9ca3af";
  var PALETTE = ["#b91c1c", "#f59e0b", "#2563eb", "#10b981", "#8b5cf6", "#ec4899", "#14b8a6", "#6b7280", "#84cc16"];

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function $(id) {
    return document.getElementById(id);
  }

  function number(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("zh-CN");
  }

  function percent(part, whole) {
    return whole ? Math.round((part / whole) * 1000) / 10 + "%" : "—";
  }

  function minutesText(minutes) {
    if (minutes === null || minutes === undefined) return "—";
    if (minutes < 60) return minutes + "分钟";
    if (minutes < 24 * 60) {
      var hours = Math.floor(minutes / 60);
      var rest = minutes % 60;
      return rest ? hours + "小时" + rest + "分" : hours + "小时";
    }
    return Math.floor(minutes / (24 * 60)) + "天";
  }

  function setValue(id, text, unit) {
    var el = $(id);
    el.textContent = text;
    if (unit && text !== "—") {
      var small = document.createElement("small");
      small.textContent = unit;
      el.appendChild(small);
    }
  }

  ready(function () {
    var root = $("dashboard");
    var form = $("dash-filter");
    if (!root || !form || !window.Chart) return;
    var Chart = window.Chart;
    Chart.defaults.animation = false; // figures, not a show: draw at once (and screenshot the final state)
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 12;
    Chart.defaults.color = "#374151";
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.responsive = true;

    var charts = {};
    var request = 0;

    function draw(id, config) {
      if (charts[id]) charts[id].destroy();
      charts[id] = new Chart($(id), config);
      var box = $(id).parentNode;
      var total = 0;
      config.data.datasets.forEach(function (ds) {
        ds.data.forEach(function (v) {
          total += v || 0;
        });
      });
      var empty = box.querySelector(".chart-empty");
      if (!total && !empty) {
        empty = document.createElement("p");
        empty.className = "chart-empty";
        empty.textContent = "暂无数据";
        box.appendChild(empty);
      } else if (total && empty) {
        box.removeChild(empty);
      }
    }

    function bars(id, labels, values, colors, horizontal) {
      draw(id, {
        type: "bar",
        data: {
          labels: labels,
          datasets: [{ label: "咨询人次", data: values, backgroundColor: colors || DARK_RED, borderRadius: 4, maxBarThickness: 28 }],
        },
        options: {
          indexAxis: horizontal ? "y" : "x",
          plugins: { legend: { display: false } },
          scales: {
            x: { beginAtZero: true, ticks: { precision: 0 }, grid: { display: !!horizontal } },
            y: { beginAtZero: true, ticks: { precision: 0, autoSkip: false }, grid: { display: !horizontal } },
          },
        },
      });
    }

    // The keys of `object` in the server's order (JSON objects arrive sorted by key), then any others.
    function ordered(keys, object) {
      var out = (keys || []).filter(function (k) {
        return Object.prototype.hasOwnProperty.call(object, k);
      });
      Object.keys(object).forEach(function (k) {
        if (out.indexOf(k) < 0) out.push(k);
      });
      return out;
    }

    function query() {
      var params = new URLSearchParams();
      params.set("start", $("dash-start").value);
      params.set("end", $("dash-end").value);
      if ($("dash-region").value) params.set("region", $("dash-region").value);
      return params;
    }

    function markQuick() {
      Array.prototype.forEach.call(form.querySelectorAll(".chip"), function (chip) {
        var on = chip.getAttribute("data-start") === $("dash-start").value && chip.getAttribute("data-end") === $("dash-end").value;
        chip.classList.toggle("active", on);
        chip.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }

    function fail(message) {
      root.setAttribute("data-state", "error");
      $("dash-status").hidden = true;
      $("dash-error").textContent = message;
      $("dash-error").hidden = false;
    }

    function load() {
      var mine = ++request;
      var params = query();
      markQuick();
      root.setAttribute("data-state", "loading");
      $("dash-error").hidden = true;
      $("dash-status").textContent = "正在加载统计数据…";
      $("dash-status").hidden = false;
      if (window.history && window.history.replaceState) {
        window.history.replaceState(null, "", form.getAttribute("action") + "?" + params.toString());
      }
      fetch(root.getAttribute("data-source") + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") < 0) {
            throw new Error("登录已过期，请刷新页面后重新登录。");
          }
          return response.json().then(function (body) {
            if (!response.ok) throw new Error(body.error || "统计数据加载失败，请稍后重试。");
            return body;
          });
        })
        .then(function (data) {
          if (mine !== request) return;
          render(data);
          $("dash-status").hidden = true;
          root.setAttribute("data-state", "ready");
        })
        .catch(function (error) {
          if (mine !== request) return;
          fail(error && error.message && /[\u4e00-\u9fff]/.test(error.message) ? error.message : "统计数据加载失败，请检查网络后重试。");
        });
    }

    function render(data) {
      var c = data.consultations;
      var lawyers = data.lawyers;
      var names = data.names;
      var title = (data.region ? data.region.name : "全部地区") + " · " + data.period.start + " 至 " + data.period.end;
      $("dash-title").textContent = title;

      setValue("kpi-total", number(c.total));
      setValue("kpi-workers", number(c.workers.total));
      setValue("kpi-new-form", number(c.new_form));
      $("kpi-new-form-share").textContent = "占咨询人次 " + percent(c.new_form, c.total) + "，" + number(c.workers.new_form) + " 人";
      var response = lawyers.first_response_minutes;
      setValue("kpi-median", number(response.median), " 分钟");
      $("kpi-p90").textContent =
        "90%分位 " + (response.p90 === null ? "—" : number(response.p90) + " 分钟") + "，目标 " + response.target + " 分钟内";
      setValue("kpi-late", number(lawyers.breaches.late_first_response), " 件");
      $("kpi-late-sub").textContent =
        "转人工 " + number(lawyers.tickets) + " 件；提醒备班 " + number(lawyers.breaches.backup_notified) +
        " 次，上报工会 " + number(lawyers.breaches.admins_notified) + " 次";
      setValue("kpi-rating", c.ratings.average === null ? "—" : c.ratings.average.toFixed(1), " 分");
      $("kpi-rating-sub").textContent = "共 " + number(c.ratings.count) + " 条评价（满分5分）";

      $("form-xlsx").setAttribute("href", data.links.xlsx);
      $("form-csv").setAttribute("href", data.links.csv);

      // Trend: by day (MM-DD) for short periods, by month otherwise.
      var trend = data.trend;
      draw("chart-trend", {
        type: "line",
        data: {
          labels: trend.map(function (t) {
            return t.period.length === 10 ? t.period.slice(5) : t.period;
          }),
          datasets: [
            {
              label: "咨询人次",
              data: trend.map(function (t) {
                return t.consultations;
              }),
              borderColor: DARK_RED,
              backgroundColor: "rgba(185, 28, 28, 0.12)",
              fill: true,
              tension: 0.3,
              cubicInterpolationMode: "monotone",
              pointRadius: trend.length > 40 ? 0 : 2,
            },
          ],
        },
        options: {
          plugins: { legend: { display: false } },
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 8 } },
            y: { beginAtZero: true, ticks: { precision: 0 } },
          },
        },
      });

      var order = names.order || {};
      var channels = ordered(order.channels, c.by_channel);
      bars(
        "chart-channel",
        channels.map(function (k) {
          return names.channels[k] || k;
        }),
        channels.map(function (k) {
          return c.by_channel[k].consultations || 0;
        }),
        channels.map(function (_k, i) {
          return PALETTE[i % PALETTE.length];
        }),
        false
      );

      var resolutions = ordered(order.resolutions, c.by_resolution);
      draw("chart-resolution", {
        type: "doughnut",
        data: {
          labels: resolutions.map(function (k) {
            return names.resolutions[k] || k;
          }),
          datasets: [
            {
              data: resolutions.map(function (k) {
                return c.by_resolution[k];
              }),
              backgroundColor: resolutions.map(function (_k, i) {
                return PALETTE[i % PALETTE.length];
              }),
              borderWidth: 1,
            },
          ],
        },
        options: {
          cutout: "55%",
          plugins: { legend: { position: "right", labels: { boxWidth: 12, padding: 10 } } },
        },
      });

      var types = ordered(order.worker_types, c.by_worker_type);
      bars(
        "chart-worker-type",
        types.map(function (k) {
          return c.by_worker_type[k].label;
        }),
        types.map(function (k) {
          return c.by_worker_type[k].consultations;
        }),
        types.map(function (k) {
          return c.by_worker_type[k].new_form ? RED : GREY;
        }),
        true
      );

      var categories = Object.keys(c.by_category).sort(function (a, b) {
        return c.by_category[b] - c.by_category[a];
      });
      bars(
        "chart-category",
        categories.map(function (k) {
          return names.categories[k] || k;
        }),
        categories.map(function (k) {
          return c.by_category[k];
        }),
        DARK_RED,
        true
      );

      var regions = data.regions;
      $("region-box").hidden = regions.length === 0;
      $("region-empty").hidden = regions.length !== 0;
      $("region-box").style.height = Math.max(160, regions.length * 34 + 50) + "px";
      bars(
        "chart-region",
        regions.map(function (r) {
          return r.name;
        }),
        regions.map(function (r) {
          return r.consultations;
        }),
        "#2563eb",
        true
      );

      var q = data.queue;
      $("queue-open").textContent = number(q.open);
      $("queue-claimed").textContent = number(q.claimed);
      $("queue-urgent").textContent = number(q.urgent);
      $("queue-urgent").classList.toggle("alert", q.urgent > 0);
      $("queue-oldest").textContent = q.oldest_waiting_minutes === null ? "—" : minutesText(q.oldest_waiting_minutes);
      $("queue-oldest").classList.toggle("alert", q.oldest_waiting_minutes !== null && q.oldest_waiting_minutes >= response.target);

      var list = $("duty-list");
      while (list.firstChild) list.removeChild(list.firstChild);
      data.on_duty.forEach(function (d) {
        var li = document.createElement("li");
        var who = document.createElement("b");
        who.textContent = d.lawyer;
        var role = document.createElement("span");
        role.className = "badge";
        role.textContent = d.role;
        var where = document.createElement("span");
        where.textContent = d.region;
        var until = document.createElement("span");
        until.className = "until";
        until.textContent = "到 " + d.until_text;
        li.appendChild(who);
        li.appendChild(role);
        li.appendChild(where);
        li.appendChild(until);
        list.appendChild(li);
      });
      $("duty-empty").hidden = data.on_duty.length > 0;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      form.removeAttribute("data-sent"); // console.js marks a sent form; this one is sent again and again
      load();
    });
    $("dash-region").addEventListener("change", load);
    Array.prototype.forEach.call(form.querySelectorAll(".chip"), function (chip) {
      chip.addEventListener("click", function () {
        $("dash-start").value = chip.getAttribute("data-start");
        $("dash-end").value = chip.getAttribute("data-end");
        load();
      });
    });
    load();
  });
})();
