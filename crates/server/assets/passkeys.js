// The console's passkeys: signing in with one on the login page, and adding, switching and
// removing them on the account page. It talks to the REST API (/api/v2/auth/login/webauthn/*
// and /api/v2/account/webauthn/*) and to the browser's WebAuthn (navigator.credentials); the
// server checks everything. Served from this origin, as the console's CSP requires.
(() => {
  'use strict';

  // WebAuthn takes and gives binary fields; the API carries them in base64url.
  const toBytes = (text) => {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');

  // A PublicKeyCredential as the API reads it.
  const credentialJSON = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) response.attestationObject = toText(r.attestationObject);
    if (r.authenticatorData) {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return { id: credential.id, rawId: toText(credential.rawId), type: credential.type, response, extensions: {} };
  };

  // POSTs `body` to `path` and returns the answer's data, or throws with the server's message.
  const post = async (path, body, csrf) => {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (csrf) headers['X-CSRF-Token'] = csrf;
    const response = await fetch(path, {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.message || `the server answered ${response.status}`);
    return answer.data;
  };

  const say = (element, error) => {
    element.textContent = error instanceof Error ? error.message : String(error);
    element.hidden = false;
  };

  const supported = () => typeof window.PublicKeyCredential === 'function' && navigator.credentials;

  // The login page: a passkey names its account, so no username is asked for.
  const login = document.querySelector('[data-passkey-login]');
  if (login) {
    const button = login.querySelector('button');
    const error = login.querySelector('.error');
    if (!supported()) {
      button.disabled = true;
      say(error, 'This browser cannot use passkeys.');
    }
    button.addEventListener('click', async () => {
      error.hidden = true;
      button.disabled = true;
      try {
        const options = await post('/api/v2/auth/login/webauthn/start', {});
        const publicKey = options.publicKey;
        publicKey.challenge = toBytes(publicKey.challenge);
        for (const allowed of publicKey.allowCredentials || []) allowed.id = toBytes(allowed.id);
        const credential = await navigator.credentials.get({ publicKey });
        await post('/api/v2/auth/login/webauthn/verify', { response: credentialJSON(credential) });
        window.location.assign(login.dataset.next || '/');
      } catch (e) {
        say(error, e);
        button.disabled = false;
      }
    });
  }

  // The account page's section: add a passkey, turn one on or off, remove one.
  const section = document.querySelector('[data-passkeys]');
  if (section) {
    const csrf = section.dataset.csrf;
    const error = section.querySelector('.error[data-passkey-error]');
    const add = section.querySelector('form[data-passkey-add]');
    if (add && !supported()) {
      add.querySelector('button').disabled = true;
      say(error, 'This browser cannot use passkeys.');
    }
    if (add) {
      add.addEventListener('submit', async (event) => {
        event.preventDefault();
        error.hidden = true;
        const button = add.querySelector('button');
        button.disabled = true;
        try {
          const options = await post('/api/v2/account/webauthn/register/options', undefined, csrf);
          const publicKey = options.publicKey;
          publicKey.challenge = toBytes(publicKey.challenge);
          publicKey.user.id = toBytes(publicKey.user.id);
          for (const excluded of publicKey.excludeCredentials || []) excluded.id = toBytes(excluded.id);
          const credential = await navigator.credentials.create({ publicKey });
          const name = add.querySelector('input[name="name"]').value;
          await post('/api/v2/account/webauthn/register/verify', { name, response: credentialJSON(credential) }, csrf);
          window.location.reload();
        } catch (e) {
          say(error, e);
          button.disabled = false;
        }
      });
    }
    for (const button of section.querySelectorAll('button[data-passkey-action]')) {
      button.addEventListener('click', async () => {
        error.hidden = true;
        const id = encodeURIComponent(button.dataset.passkeyId);
        const path = `/api/v2/account/webauthn/credentials/${id}`;
        try {
          if (button.dataset.passkeyAction === 'toggle') {
            await post(`${path}/toggle`, undefined, csrf);
          } else {
            const response = await fetch(path, {
              method: 'DELETE',
              headers: { Accept: 'application/json', 'X-CSRF-Token': csrf },
              credentials: 'same-origin',
            });
            if (!response.ok) {
              const answer = await response.json().catch(() => ({}));
              throw new Error(answer.message || `the server answered ${response.status}`);
            }
          }
          window.location.reload();
        } catch (e) {
          say(error, e);
        }
      });
    }
  }
})();
