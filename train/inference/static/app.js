// The serve page: asks /health what the model is, sends the review to /predict, then draws each
// aspect's /explain weights as HTML heat maps (one colour scale per map, 0 to its largest value,
// as in the PNG of --mode explain).
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
// One click fills the form and classifies. ATSA: the terms; ACSA: the categories, those the model knows.
const EXAMPLES = [
  {text: "The decor is not special at all but their food is amazing.", terms: ["decor", "food"],
   categories: ["ambience", "food"]},
  {text: "The waiter was rude, but the pasta was worth the wait.", terms: ["waiter", "pasta"],
   categories: ["staff", "service", "food"]},
  {text: "Prices are high for what you get, though the view is lovely.", terms: ["Prices", "view"],
   categories: ["price", "place", "ambience"]},
];

function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function call(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `${path}: HTTP ${response.status}`);
  return answer;
}

function showError(message) {
  $("error").textContent = message ? `error: ${message}` : "";
  $("error").hidden = !message;
}

function chosenAspects() {
  if (model.task === "acsa") {
    return [...document.querySelectorAll("#categories input:checked")].map((box) => box.value);
  }
  return $("terms").value.split(",").map((term) => term.trim()).filter((term) => term);
}

function heatColour(value, top) {
  const share = top > 0 ? Math.max(0, value) / top : 0;
  return {background: `rgba(207, 34, 46, ${(0.08 + 0.85 * share).toFixed(3)})`, color: share > 0.6 ? "#fff" : "#1f2328"};
}

function drawMap(map) {
  // one weight map of an /explain record: {"name", "field", "words", "rows": {row: [value per word]}}; with
  // CapsNet on ATSA also "marker" (the <aspect> marker's place and weights) and a "note": the colours then
  // scale to the other words, so that the marker does not wash them out
  const rows = Object.keys(map.rows);
  const skip = map.marker ? map.marker.position : -1;
  const top = Math.max(0, ...rows.flatMap((row) => map.rows[row].filter((_, i) => i !== skip)));
  const box = element("div", {class: "heat", "data-map": map.name});
  box.append(element("h3", {}, map.name));
  if (map.note) box.append(element("p", {class: "note"}, map.note));
  if (rows.length === 1) {                       // one row: the words themselves, coloured
    const sentence = element("div", {class: "sentence"});
    map.words.forEach((word, i) => {
      const value = map.rows[rows[0]][i];
      const span = element("span", {title: `${rows[0]} = ${value.toFixed(4)}`}, word);
      Object.assign(span.style, heatColour(value, top));
      sentence.append(span);
    });
    box.append(sentence);
    return box;
  }
  const table = element("table", {class: "grid"});   // several rows: words across, one row each
  const head = element("tr");
  head.append(element("th"));
  map.words.forEach((word) => head.append(element("th", {}, word)));
  table.append(head);
  for (const row of rows) {
    const line = element("tr");
    line.append(element("th", {class: "row"}, row));
    map.rows[row].forEach((value, i) => {
      const cell = element("td", {title: `${map.words[i]} -> ${row} = ${value.toFixed(4)}`}, value.toFixed(2));
      Object.assign(cell.style, heatColour(value, top));
      line.append(cell);
    });
    table.append(line);
  }
  const wrap = element("div", {class: "grid-wrap"});
  wrap.append(table);
  box.append(wrap);
  return box;
}

function drawRecord(record) {
  const card = element("article", {class: "aspect", "data-aspect": record.aspect});
  const title = element("h2", {}, record.aspect);
  title.append(element("span", {class: `label ${record.label}`, "data-label": record.label}, record.label));
  card.append(title);
  const scores = element("div", {class: "scores"});
  for (const [name, value] of Object.entries(record.scores)) {
    const bar = element("div", {class: "bar"});
    const fill = element("span");
    fill.style.width = `${(100 * value).toFixed(1)}%`;
    bar.append(fill);
    scores.append(element("span", {}, name), bar, element("span", {}, value.toFixed(3)));
  }
  card.append(scores);
  return card;
}

function showExamples() {
  for (const example of EXAMPLES) {
    const aspects = model.task === "acsa" ? example.categories.filter((c) => model.categories.includes(c))
                                          : example.terms;
    if (!aspects.length) continue;
    const button = element("button", {type: "button", class: "example"}, example.text);
    button.addEventListener("click", () => {
      $("text").value = example.text;
      if (model.task === "acsa") {
        for (const box of document.querySelectorAll("#categories input")) box.checked = aspects.includes(box.value);
      } else {
        $("terms").value = aspects.join(", ");
      }
      $("form").requestSubmit();
    });
    $("examples").append(button);
  }
  $("examples").hidden = !$("examples").querySelector("button");
}

async function classify(event) {
  event.preventDefault();
  showError("");
  const text = $("text").value, aspects = chosenAspects();
  if (!text.trim()) return showError("type a review first");
  if (!aspects.length) return showError(model.task === "acsa" ? "choose one or more categories"
                                                              : "type one or more aspect terms");
  $("classify").disabled = true;
  $("results").replaceChildren();
  try {
    const records = await call("/predict", {text, aspects});
    const cards = records.map(drawRecord);
    $("results").replaceChildren(...cards);
    if (model.explains) {
      await Promise.all(records.map(async (record, k) => {
        const pending = element("p", {class: "pending"}, "explaining…");
        cards[k].append(pending);
        const explained = await call("/explain", {text, aspect: aspects[k]});
        pending.replaceWith(...explained.weights.map(drawMap));
      }));
    }
  } catch (err) {
    showError(err.message);
  } finally {
    $("classify").disabled = false;
  }
}

async function start() {
  try {
    model = await call("/health");
  } catch (err) {
    $("model-info").textContent = "";
    return showError(err.message);
  }
  $("model-info").textContent = `${model.model} (${model.task.toUpperCase()})`;
  if (model.task === "acsa") {
    for (const category of model.categories) {
      const label = element("label");
      const box = element("input", {type: "checkbox", value: category, name: "category"});
      label.append(box, ` ${category}`);
      $("categories").append(label);
    }
    $("aspects-acsa").hidden = false;
  } else {
    $("aspects-atsa").hidden = false;
  }
  $("classify").disabled = false;
  $("form").addEventListener("submit", classify);
  showExamples();
}

start();
