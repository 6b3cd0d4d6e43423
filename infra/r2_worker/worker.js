/**
 * dropreel R2 forwarder.
 *
 * R2 event notifications land on a Cloudflare Queue; this consumer Worker POSTs each message
 * body, on its own, to the dropreel webhook's /events/r2 route, signed so the webhook can tell
 * it from anyone else:
 *
 *   X-Dropreel-Timestamp: <Unix seconds>
 *   X-Dropreel-Signature: v1=<hex HMAC-SHA256 over "<timestamp>.<body>" keyed with DROPREEL_R2_SECRET>
 *
 * The webhook refuses timestamps more than 5 minutes off, so a retry is always signed afresh.
 * A message is acknowledged on 2xx, and on 400/413 (a body the webhook can never accept);
 * anything else (network error, 401/403 while secrets are being rotated, 5xx) is retried with
 * a delay, up to the queue's max_retries (then the dead-letter queue, if configured).
 *
 * Configuration (wrangler.toml / secrets): DROPREEL_WEBHOOK_URL (var), DROPREEL_R2_SECRET (secret).
 */

const encoder = new TextEncoder();

async function hmacHex(secret, text) {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(text));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function forward(body, env, now = Date.now()) {
  const payload = typeof body === "string" ? body : JSON.stringify(body);
  const timestamp = Math.floor(now / 1000).toString();
  const signature = "v1=" + (await hmacHex(env.DROPREEL_R2_SECRET, `${timestamp}.${payload}`));
  return fetch(env.DROPREEL_WEBHOOK_URL, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Dropreel-Timestamp": timestamp,
      "X-Dropreel-Signature": signature,
    },
    body: payload,
  });
}

export default {
  async queue(batch, env) {
    if (!env.DROPREEL_WEBHOOK_URL || !env.DROPREEL_R2_SECRET) {
      console.error("set DROPREEL_WEBHOOK_URL and the DROPREEL_R2_SECRET secret; retrying later");
      batch.retryAll({ delaySeconds: 60 });
      return;
    }
    for (const message of batch.messages) {
      try {
        const response = await forward(message.body, env);
        if (response.ok || response.status === 400 || response.status === 413) {
          if (!response.ok) {
            console.error(`webhook refused message ${message.id}: HTTP ${response.status}`);
          }
          message.ack();
        } else {
          console.warn(`webhook answered HTTP ${response.status} for ${message.id}; will retry`);
          message.retry({ delaySeconds: 10 });
        }
      } catch (err) {
        console.warn(`could not reach the webhook for ${message.id}: ${err}; will retry`);
        message.retry({ delaySeconds: 10 });
      }
    }
  },
};
