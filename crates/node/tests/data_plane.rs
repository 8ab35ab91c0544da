//! Data-plane scenarios on the deterministic runtime with the simulated network: blob fetches
//! between nodes, private blobs, misbehaving peers, store restarts, and the mempool channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_ledger::transaction::{Payload, SignedTransaction};
use cairn_node::blobs::{self, blob_hash, BlobConfig, BlobStore, BlobView, FetchError, Fetcher};
use cairn_node::channels::{BLOBS, MEMPOOL};
use cairn_node::mempool::{self, Mempool, MempoolConfig};
use cairn_node::penalty::PenaltyConfig;
use cairn_node::wire::{max_message_bytes, Message, CHUNK_BYTES, MAX_BLOB_BYTES};
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::simulated::{Config, Link, Network, Oracle};
use commonware_p2p::{Receiver as _, Recipients, Sender as _};
use commonware_runtime::{
    deterministic, Blob as _, Clock as _, Quota, Runner as _, Spawner as _, Storage as _,
    Supervisor as _, WriteOptions,
};
use commonware_utils::{probability, NZUsize, NZU32};

type Context = deterministic::Context;
type Key = ed25519::PublicKey;

fn peers(n: u64) -> Vec<Key> {
    (0..n)
        .map(|seed| ed25519::PrivateKey::from_seed(seed).public_key())
        .collect()
}

fn quota() -> Quota {
    Quota::per_second(NZU32!(100_000))
}

/// A running simulated network with every pair of `keys` linked both ways.
async fn network(context: &Context, keys: &[Key]) -> Oracle<Key, Context> {
    let config = Config {
        max_size: u32::try_from(max_message_bytes()).unwrap(),
        max_peers_per_set: NZUsize!(keys.len()),
        disconnect_on_block: true,
        tracked_peer_sets: NZUsize!(1),
    };
    let (network, oracle) =
        Network::new_with_peers(context.child("network"), config, keys.to_vec()).await;
    network.start();
    let link = Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        success_rate: probability!(1.0),
    };
    for a in keys {
        for b in keys {
            if a != b {
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .unwrap();
            }
        }
    }
    oracle
}

/// An honest node: its own blob partition and a running blob service.
async fn blob_node(
    context: &Context,
    oracle: &Oracle<Key, Context>,
    key: &Key,
    index: usize,
    config: BlobConfig,
) -> (BlobStore<Context>, Fetcher<Key>) {
    let control = oracle.control(key.clone());
    let (sender, receiver) = control.register(BLOBS, quota()).await.unwrap();
    let partition = format!("cairn-blobs-{index}");
    let store = BlobStore::open(context.child("storage"), &partition, MAX_BLOB_BYTES)
        .await
        .unwrap();
    let (fetcher, _) = blobs::start(
        context.child("blobs"),
        store.clone(),
        config,
        sender,
        receiver,
        control,
    );
    (store, fetcher)
}

/// A peer that answers every blob request with what `forge` makes of it.
async fn byzantine(
    context: &Context,
    oracle: &Oracle<Key, Context>,
    key: &Key,
    forge: fn([u8; 32], u32) -> Vec<Vec<u8>>,
) {
    let (mut sender, mut receiver) = oracle
        .control(key.clone())
        .register(BLOBS, quota())
        .await
        .unwrap();
    context.child("byzantine").spawn(move |_| async move {
        while let Ok((peer, bytes)) = receiver.recv().await {
            if let Ok(Message::BlobRequest { hash, chunk }) = Message::from_bytes(bytes.as_ref()) {
                for reply in forge(hash, chunk) {
                    sender.send(Recipients::One(peer.clone()), reply, false);
                }
            }
        }
    });
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn run<F, Fut, T>(seed: u64, test: F) -> T
where
    F: FnOnce(Context) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let config = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(config).start(test)
}

#[test]
fn multi_chunk_blob_travels_intact_across_three_nodes() {
    run(1, |context| async move {
        let keys = peers(3);
        let oracle = network(&context, &keys).await;
        let mut nodes = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            nodes.push(blob_node(&context, &oracle, key, index, BlobConfig::default()).await);
        }
        let blob = payload(2 * CHUNK_BYTES + CHUNK_BYTES / 2, 7);
        let hash = nodes[0].0.put(&blob, true).await.unwrap();
        assert_eq!(hash, blob_hash(&blob));

        let fetched = nodes[1].1.fetch(hash, vec![keys[0].clone()]).await.unwrap();
        assert_eq!(&fetched[..], &blob[..]);
        assert_eq!(nodes[1].0.is_public(&hash), Some(true));
        // The fetched copy is served onwards.
        let relayed = nodes[2].1.fetch(hash, vec![keys[1].clone()]).await.unwrap();
        assert_eq!(&relayed[..], &blob[..]);
        assert_eq!(nodes[2].0.blob(&hash).as_deref(), Some(&blob[..]));
        assert!(oracle.blocked().await.unwrap().is_empty());
    });
}

#[test]
fn private_blob_is_not_served_until_published() {
    run(2, |context| async move {
        let keys = peers(2);
        let oracle = network(&context, &keys).await;
        let config = BlobConfig {
            rounds: 2,
            request_timeout: Duration::from_millis(500),
            ..BlobConfig::default()
        };
        let (owner, _) = blob_node(&context, &oracle, &keys[0], 0, config).await;
        let (_, fetcher) = blob_node(&context, &oracle, &keys[1], 1, config).await;
        let update = payload(1000, 3);
        let hash = owner.put(&update, false).await.unwrap();
        assert_eq!(owner.blob(&hash).as_deref(), Some(&update[..]));
        assert!(owner.public_blob(&hash).is_none());

        let refused = fetcher.fetch(hash, vec![keys[0].clone()]).await;
        assert!(matches!(
            refused,
            Err(FetchError::Exhausted { attempts: 2, .. })
        ));

        owner.publish(&hash).await.unwrap();
        let fetched = fetcher.fetch(hash, vec![keys[0].clone()]).await.unwrap();
        assert_eq!(&fetched[..], &update[..]);
        assert_eq!(
            fetcher.fetch([9; 32], Vec::new()).await,
            Err(FetchError::NoPeers(cairn_ledger::encoding::to_hex(
                &[9; 32]
            )))
        );
        assert!(oracle.blocked().await.unwrap().is_empty());
    });
}

fn wrong_bytes(hash: [u8; 32], chunk: u32) -> Vec<Vec<u8>> {
    let reply = Message::BlobChunk {
        hash,
        chunk,
        total_len: 10,
        data: Bytes::from_static(b"not-a-blob"),
    };
    vec![reply.to_bytes()]
}

#[test]
fn peer_serving_wrong_bytes_is_blocked_after_two_offences_and_honest_peer_serves() {
    run(3, |context| async move {
        let keys = peers(3);
        let (liar, honest, client) = (&keys[0], &keys[1], &keys[2]);
        let oracle = network(&context, &keys).await;
        byzantine(&context, &oracle, liar, wrong_bytes).await;
        let (store, _) = blob_node(&context, &oracle, honest, 1, BlobConfig::default()).await;
        let (_, fetcher) = blob_node(&context, &oracle, client, 2, BlobConfig::default()).await;

        let first = payload(CHUNK_BYTES + 1, 1);
        let second = payload(4096, 2);
        let first_hash = store.put(&first, true).await.unwrap();
        let second_hash = store.put(&second, true).await.unwrap();
        let order = vec![liar.clone(), honest.clone()];

        let fetched = fetcher.fetch(first_hash, order.clone()).await.unwrap();
        assert_eq!(&fetched[..], &first[..]);
        assert!(
            oracle.blocked().await.unwrap().is_empty(),
            "one wrong hash is tolerated"
        );

        let fetched = fetcher.fetch(second_hash, order).await.unwrap();
        assert_eq!(&fetched[..], &second[..]);
        assert_eq!(
            oracle.blocked().await.unwrap(),
            vec![(client.clone(), liar.clone())]
        );
    });
}

fn oversized(hash: [u8; 32], chunk: u32) -> Vec<Vec<u8>> {
    let reply = Message::BlobChunk {
        hash,
        chunk,
        total_len: MAX_BLOB_BYTES + 1,
        data: Bytes::from_static(b"x"),
    };
    vec![reply.to_bytes()]
}

#[test]
fn peer_announcing_an_oversized_blob_is_blocked_at_once() {
    run(4, |context| async move {
        let keys = peers(3);
        let oracle = network(&context, &keys).await;
        byzantine(&context, &oracle, &keys[0], oversized).await;
        let (store, _) = blob_node(&context, &oracle, &keys[1], 1, BlobConfig::default()).await;
        let (_, fetcher) = blob_node(&context, &oracle, &keys[2], 2, BlobConfig::default()).await;
        let blob = payload(300, 4);
        let hash = store.put(&blob, true).await.unwrap();
        let fetched = fetcher
            .fetch(hash, vec![keys[0].clone(), keys[1].clone()])
            .await
            .unwrap();
        assert_eq!(&fetched[..], &blob[..]);
        assert_eq!(
            oracle.blocked().await.unwrap(),
            vec![(keys[2].clone(), keys[0].clone())]
        );
    });
}

fn garbage(_: [u8; 32], chunk: u32) -> Vec<Vec<u8>> {
    (0..4u8).map(|i| vec![1, 2, i, chunk as u8, 0xff]).collect()
}

#[test]
fn peer_sending_garbled_chunks_is_blocked_past_the_limit_and_fetch_succeeds() {
    run(5, |context| async move {
        let keys = peers(3);
        let oracle = network(&context, &keys).await;
        byzantine(&context, &oracle, &keys[0], garbage).await;
        let config = BlobConfig {
            penalties: PenaltyConfig {
                malformed: 30,
                ..PenaltyConfig::default()
            },
            ..BlobConfig::default()
        };
        let (store, _) = blob_node(&context, &oracle, &keys[1], 1, config).await;
        let (_, fetcher) = blob_node(&context, &oracle, &keys[2], 2, config).await;
        let blob = payload(CHUNK_BYTES * 2, 5);
        let hash = store.put(&blob, true).await.unwrap();
        let fetched = fetcher
            .fetch(hash, vec![keys[0].clone(), keys[1].clone()])
            .await
            .unwrap();
        assert_eq!(&fetched[..], &blob[..]);
        // Four garbled messages at weight 30 pass the limit of 100.
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(
            oracle.blocked().await.unwrap(),
            vec![(keys[2].clone(), keys[0].clone())]
        );
    });
}

fn silent(_: [u8; 32], _: u32) -> Vec<Vec<u8>> {
    Vec::new()
}

#[test]
fn silent_peer_times_out_and_the_fetch_moves_on_without_penalty() {
    run(8, |context| async move {
        let keys = peers(3);
        let oracle = network(&context, &keys).await;
        byzantine(&context, &oracle, &keys[0], silent).await;
        let config = BlobConfig {
            request_timeout: Duration::from_millis(300),
            ..BlobConfig::default()
        };
        let (store, _) = blob_node(&context, &oracle, &keys[1], 1, config).await;
        let (_, fetcher) = blob_node(&context, &oracle, &keys[2], 2, config).await;
        let blob = payload(CHUNK_BYTES + 17, 8);
        let hash = store.put(&blob, true).await.unwrap();
        let started = context.current();
        let fetched = fetcher
            .fetch(hash, vec![keys[0].clone(), keys[1].clone()])
            .await
            .unwrap();
        assert_eq!(&fetched[..], &blob[..]);
        let waited = context.current().duration_since(started).unwrap();
        assert!(waited >= Duration::from_millis(300), "waited {waited:?}");
        assert!(oracle.blocked().await.unwrap().is_empty());
    });
}

#[test]
fn peer_pushing_chunks_nobody_asked_for_is_blocked() {
    run(9, |context| async move {
        let keys = peers(2);
        let oracle = network(&context, &keys).await;
        let config = BlobConfig {
            penalties: PenaltyConfig {
                unsolicited: 50,
                ..PenaltyConfig::default()
            },
            ..BlobConfig::default()
        };
        let _node = blob_node(&context, &oracle, &keys[1], 1, config).await;
        let (mut pusher, _) = oracle
            .control(keys[0].clone())
            .register(BLOBS, quota())
            .await
            .unwrap();
        for chunk in 0..2 {
            let push = Message::BlobChunk {
                hash: [chunk as u8; 32],
                chunk,
                total_len: 3,
                data: Bytes::from_static(b"abc"),
            };
            pusher.send(Recipients::One(keys[1].clone()), push.to_bytes(), false);
        }
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(
            oracle.blocked().await.unwrap(),
            vec![(keys[1].clone(), keys[0].clone())]
        );
    });
}

#[test]
fn synced_blobs_survive_reopening_and_corrupt_ones_are_dropped() {
    run(6, |context| async move {
        let partition = "cairn-blobs-restart";
        let store = BlobStore::open(context.child("storage"), partition, MAX_BLOB_BYTES)
            .await
            .unwrap();
        let public = store.put(&payload(5000, 1), true).await.unwrap();
        let private = store.put(&payload(70, 2), false).await.unwrap();
        let pruned = store.put(&payload(9, 3), true).await.unwrap();
        let published = store.put(&payload(11, 4), false).await.unwrap();
        store.publish(&published).await.unwrap();
        assert_eq!(store.prune(|hash| *hash != pruned).await.unwrap(), 1);
        assert!(matches!(
            store.put(&[0u8; 16], true).await.map(|_| ()),
            Ok(())
        ));
        drop(store);

        // A blob whose content does not match its name, as a torn write leaves it.
        let bogus = cairn_ledger::encoding::to_hex(&[0xab; 32]);
        let (blob, _) = context.open(partition, bogus.as_bytes()).await.unwrap();
        blob.write_at(0, vec![1u8, 2, 3], WriteOptions::default())
            .await
            .unwrap();
        blob.sync().await.unwrap();
        drop(blob);

        let reopened = BlobStore::open(context.child("storage"), partition, MAX_BLOB_BYTES)
            .await
            .unwrap();
        assert_eq!(
            reopened.blob(&public).as_deref(),
            Some(&payload(5000, 1)[..])
        );
        assert_eq!(reopened.is_public(&public), Some(true));
        assert_eq!(reopened.is_public(&private), Some(false));
        assert_eq!(reopened.is_public(&published), Some(true));
        assert!(!reopened.contains(&pruned));
        assert!(!reopened.contains(&[0xab; 32]));
        assert_eq!(reopened.hashes().len(), 4);
        let scanned = context.scan(partition).await.unwrap();
        assert_eq!(
            scanned.len(),
            4,
            "the corrupt blob was removed from storage"
        );
    });
}

fn burn(seed: u8, chain: u64, nonce: u64) -> SignedTransaction {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    SignedTransaction::new(&key, chain, nonce, Payload::Burn { amount: 1 })
}

#[test]
fn mempool_channel_admits_valid_transactions_and_blocks_senders_of_invalid_ones() {
    run(7, |context| async move {
        let keys = peers(3);
        let (validator, trainer, spammer) = (&keys[0], &keys[1], &keys[2]);
        let oracle = network(&context, &keys).await;
        let control = oracle.control(validator.clone());
        let (_, receiver) = control.register(MEMPOOL, quota()).await.unwrap();
        let pool = Arc::new(Mutex::new(Mempool::new(MempoolConfig::new(1))));
        mempool::start(
            context.child("mempool"),
            Arc::clone(&pool),
            PenaltyConfig::default(),
            receiver,
            control,
        );
        let (mut trainer_sender, _) = oracle
            .control(trainer.clone())
            .register(MEMPOOL, quota())
            .await
            .unwrap();
        let (mut spam_sender, _) = oracle
            .control(spammer.clone())
            .register(MEMPOOL, quota())
            .await
            .unwrap();

        let good = burn(1, 1, 0);
        let sent = mempool::broadcast(&mut trainer_sender, &good, vec![validator.clone()]);
        assert_eq!(sent, vec![validator.clone()]);
        // A transaction for another chain, then garbage: 10 + 9 x 10 reaches the limit.
        mempool::broadcast(&mut spam_sender, &burn(2, 99, 0), vec![validator.clone()]);
        for _ in 0..9 {
            spam_sender.send(Recipients::One(validator.clone()), vec![1u8, 0, 7], false);
        }
        context.sleep(Duration::from_secs(1)).await;
        {
            let pool = pool.lock().unwrap();
            assert_eq!(pool.len(), 1);
            assert!(pool.contains(&good.hash()));
        }
        assert_eq!(
            oracle.blocked().await.unwrap(),
            vec![(validator.clone(), spammer.clone())]
        );
        // The trainer resending the same transaction is a duplicate, not an offence.
        mempool::broadcast(&mut trainer_sender, &good, vec![validator.clone()]);
        context.sleep(Duration::from_secs(1)).await;
        assert_eq!(oracle.blocked().await.unwrap().len(), 1);
    });
}

/// One lossy three-node fetch with a lying peer; returns the runtime's audit of every event.
fn lossy_fetch_with_a_liar(seed: u64) -> String {
    run(seed, |context| async move {
        let keys = peers(3);
        let oracle = network(&context, &keys).await;
        let lossy = Link {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(30),
            success_rate: probability!(0.7),
        };
        oracle
            .remove_link(keys[1].clone(), keys[2].clone())
            .await
            .unwrap();
        oracle
            .add_link(keys[1].clone(), keys[2].clone(), lossy)
            .await
            .unwrap();
        byzantine(&context, &oracle, &keys[0], wrong_bytes).await;
        let config = BlobConfig {
            request_timeout: Duration::from_millis(200),
            rounds: 50,
            ..BlobConfig::default()
        };
        let (store, _) = blob_node(&context, &oracle, &keys[1], 1, config).await;
        let (_, fetcher) = blob_node(&context, &oracle, &keys[2], 2, config).await;
        let blob = payload(3 * CHUNK_BYTES, 9);
        let hash = store.put(&blob, true).await.unwrap();
        let fetched = fetcher
            .fetch(hash, vec![keys[0].clone(), keys[1].clone()])
            .await
            .unwrap();
        assert_eq!(&fetched[..], &blob[..]);
        context.auditor().state()
    })
}

#[test]
fn lossy_fetch_replays_identically_from_its_seed() {
    let first = lossy_fetch_with_a_liar(11);
    assert_eq!(first, lossy_fetch_with_a_liar(11));
    assert_ne!(first, lossy_fetch_with_a_liar(12));
    // Golden audit of seed 11 under commonware 2026.10.0: changes only if the protocol's
    // messages, timers or the pinned runtime change.
    assert_eq!(first, "5e8c4ae7");
}
