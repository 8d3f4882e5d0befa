// The page talks to the server's own OpenAI-style API: POST /v1/chat/completions with stream: true, read as
// server-sent events. The conversation about the current picture is sent whole at every turn (the server reuses
// what it has computed for the turns before).
"use strict";

const $ = id => document.getElementById(id);
let picture = null;   // data URI of the chosen picture
let turns = [];       // OpenAI messages of the conversation about it

fetch("/v1/models").then(r => r.json()).then(m => { $("model").textContent = m.data[0].id; })
  .catch(() => { $("model").textContent = "no model"; });

function choose(file) {
  if (!file || !file.type.startsWith("image/")) return showError("That is not a picture.");
  const reader = new FileReader();
  reader.onload = () => {
    picture = reader.result;
    turns = [];
    $("conversation").replaceChildren();
    $("preview").src = picture;
    $("preview").hidden = false;
  };
  reader.readAsDataURL(file);
}

$("file").addEventListener("change", e => choose(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files[0]); });

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "turn " + role;
  div.textContent = text;
  $("conversation").append(div);
  return div;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

$("ask").addEventListener("submit", async e => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("error").hidden = true;
  $("send").disabled = true;
  const content = turns.length === 0 && picture
    ? [{ type: "image_url", image_url: { url: picture } }, { type: "text", text: question }]
    : question;
  const messages = [...turns, { role: "user", content }];
  bubble("user", question);
  const answer = bubble("assistant", "");
  answer.id = "answer-" + turns.length / 2;
  answer.classList.add("streaming");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages, stream: true, generate_image: $("draw").checked }),
    });
    if (!response.ok) throw new Error((await response.json()).error.message);
    await readEvents(response, chunk => {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices[0]?.delta ?? {};
      if (delta.content) answer.textContent += delta.content;
      for (const image of delta.images ?? []) {
        const img = document.createElement("img");
        img.className = "generated";
        img.src = `data:${image.media_type};base64,${image.b64_json}`;
        answer.append(img);
      }
    });
    turns = [...messages, { role: "assistant", content: answer.textContent }];
    $("question").value = "";
  } catch (error) {
    showError(error.message);
  } finally {
    answer.classList.remove("streaming");
    answer.classList.add("done");
    $("send").disabled = false;
  }
});

async function readEvents(response, onChunk) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") return;
      onChunk(JSON.parse(data));
    }
  }
}
