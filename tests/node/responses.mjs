// The official openai npm package against the hub's /v1/responses: prints one JSON object of
// what it saw (tests/test_openai_responses.py asserts on it). HUB_URL and HUB_KEY name the hub.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: `${process.env.HUB_URL}/v1`, apiKey: process.env.HUB_KEY, maxRetries: 0 });
const weather = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const seen = {};

const text = await client.responses.create({ model: "small", input: "How do I reset my MFA?" });
seen.text = text.output_text;
seen.inputTokens = text.usage.input_tokens;

const kinds = [];
let streamed = "";
for await (const event of await client.responses.create({ model: "small", input: "Where is the office?", stream: true })) {
  kinds.push(event.type);
  if (event.type === "response.output_text.delta") streamed += event.delta;
}
seen.kinds = kinds;
seen.streamed = streamed;

const call = (await client.responses.create({ model: "tools", input: "Weather in Taipei?", tools: [weather] }))
  .output.find((item) => item.type === "function_call");
seen.call = { name: call.name, arguments: call.arguments };
const answer = await client.responses.create({
  model: "tools",
  tools: [weather],
  input: [
    { role: "user", content: "Weather in Taipei?" },
    call,
    { type: "function_call_output", call_id: call.call_id, output: "sunny" },
  ],
});
seen.toolAnswer = answer.output_text;

const kb = await client.responses.create({ model: "kb", input: "How do I claim travel expenses?" });
seen.annotations = kb.output[0].content[0].annotations.map((a) => a.type);

try {
  await new OpenAI({ baseURL: `${process.env.HUB_URL}/v1`, apiKey: "ah_wrong-key-000000000000000", maxRetries: 0 })
    .responses.create({ model: "small", input: "hi" });
  seen.authError = "none";
} catch (error) {
  seen.authError = error instanceof OpenAI.AuthenticationError ? "AuthenticationError" : String(error);
}
console.log(JSON.stringify(seen));
