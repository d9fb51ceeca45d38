// NEAR's JavaScript client (near-api-js, from npm) against the devnet, as a browser wallet or a Node app
// would use it: reads an account's state, makes a function call with a deposit and a transfer, then sends
// three transactions a node must refuse. Prints one JSON object; test_near_api_js.py judges it.
//
//   node near_api_js_client.mjs <rpc url> <account id> <ed25519 key> <receiver id> <htlc account>
import {
  Account,
  JsonRpcProvider,
  KeyPair,
  KeyPairSigner,
  actions,
  createTransaction,
  baseDecode,
} from "near-api-js";

const [rpcUrl, accountId, key, receiverId, htlc] = process.argv.slice(2);
const provider = new JsonRpcProvider({ url: rpcUrl });
const account = new Account(accountId, provider, key);
const out = {};

const refusal = async (send) => {
  try {
    await send();
    return { refused: false };
  } catch (e) {
    return { refused: true, type: e.type || e.name || "", message: String(e.message || e) };
  }
};

out.state = await account.getState();
const called = await account.callFunctionRaw({
  contractId: htlc,
  methodName: "deposit_native",
  args: {},
  deposit: 10n ** 22n,
  gas: 30n * 10n ** 12n,
});
out.call = { hash: called.transaction.hash, status: called.status };
const sent = await account.transfer({ receiverId, amount: 10n ** 23n });
out.transfer = { hash: sent.transaction.hash, status: sent.status };

// A transaction signed by hand, with the nonce and the key chosen here.
const signed = async (signerKey, nonce) => {
  const keyPair = KeyPair.fromString(signerKey);
  const block = await provider.viewBlock({ finality: "final" });
  const tx = createTransaction(
    accountId,
    keyPair.getPublicKey(),
    receiverId,
    nonce,
    [actions.transfer(1n)],
    baseDecode(block.header.hash),
  );
  const { signedTransaction } = await new KeyPairSigner(keyPair).signTransaction(tx);
  return signedTransaction;
};
const accessKey = await account.getAccessKey(KeyPair.fromString(key).getPublicKey());
const used = BigInt(accessKey.nonce);
out.stale_nonce = await refusal(async () => provider.sendTransaction(await signed(key, used)));
const stranger = KeyPair.fromRandom("ed25519").toString();
out.unknown_key = await refusal(async () => provider.sendTransaction(await signed(stranger, used + 1n)));
const tampered = await signed(key, used + 1n);
tampered.signature.data[0] ^= 0xff;
out.bad_signature = await refusal(async () => provider.sendTransaction(tampered));
out.state_after = await account.getState();
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
