/*
 * HzPeer - the official Hazelcast Java client as a command-line peer for our
 * C tests: it writes what the C client must read and reads what the C client
 * wrote, with the official serialization (String keys, byte[] values).
 *
 *   java -cp CLASSES:hazelcast.jar HzPeer --members 127.0.0.1:5721[,...]
 *        [--cluster dev] [--unisocket] [--verbose] COMMAND ARGS...
 *
 * COMMAND is one of the one-shot commands below, `serve` (read commands from
 * stdin, one reply line each, until EOF or `quit`) or `listen MAP` /
 * `listen-inval MAP` (print entry events / near-cache invalidations of MAP,
 * one line each, until stdin closes). `property FIELD`
 * needs no member: it prints name=default of ClusterProperty.FIELD.
 *
 * Reply lines (serve mode; one-shot mode prints the same payload and exits):
 *   ok [PAYLOAD]        success; PAYLOAD depends on the command
 *   null                get/put/remove found no value (one-shot: get exits 1,
 *                       put/remove print "null")
 *   err CLASS: MESSAGE  the command failed (one-shot: exit 2)
 * Tokens: keys are Strings (a token "x:HEX" is the hex of the key's UTF-8);
 * values are byte[] given as hex, "-" for the empty array, or "@FILE".
 * See tests/interop/README.md for the command table.
 */
import com.hazelcast.client.HazelcastClient;
import com.hazelcast.client.config.ClientConfig;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.map.MapEvent;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryEvictedListener;
import com.hazelcast.map.listener.EntryExpiredListener;
import com.hazelcast.map.listener.EntryRemovedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import com.hazelcast.map.listener.MapClearedListener;
import com.hazelcast.map.listener.MapEvictedListener;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public final class HzPeer {
    /** Thrown for a reply other than "ok": null (absent) or a usage error. */
    static final class Reply extends Exception {
        final int exit;
        Reply(String line, int exit) { super(line, null, false, false); this.exit = exit; }
    }

    private final HazelcastInstance hz;
    /** Entry events of `listen` registrations in serve mode, drained by `poll`. */
    private final LinkedBlockingQueue<String> events = new LinkedBlockingQueue<>();

    private HzPeer(HazelcastInstance hz) { this.hz = hz; }

    static String hex(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) sb.append(Character.forDigit((x >> 4) & 15, 16)).append(Character.forDigit(x & 15, 16));
        return sb.toString();
    }

    static byte[] unhex(String s) throws Reply {
        if (s.length() % 2 != 0) throw new Reply("err usage: odd hex length", 2);
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16), lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) throw new Reply("err usage: bad hex digit", 2);
            out[i] = (byte) (hi << 4 | lo);
        }
        return out;
    }

    static String key(String tok) throws Reply {
        return tok.startsWith("x:") ? new String(unhex(tok.substring(2)), StandardCharsets.UTF_8) : tok;
    }

    static byte[] value(String tok) throws Exception {
        if (tok.equals("-")) return new byte[0];
        if (tok.startsWith("@")) return Files.readAllBytes(Paths.get(tok.substring(1)));
        return unhex(tok);
    }

    /** Formats a map value: byte[] as hex, anything else is an error naming its type. */
    static String show(Object v) throws Reply {
        if (v == null) throw new Reply("null", 1);
        if (v instanceof byte[]) return "ok " + hex((byte[]) v);
        throw new Reply("err type " + v.getClass().getName(), 2);
    }

    static void need(String[] a, int n, String usage) throws Reply {
        if (a.length != n) throw new Reply("err usage: " + usage, 2);
    }

    IMap<String, Object> map(String name) { return hz.getMap(name); }

    /** Runs one command; returns the reply line ("ok ..."), throws Reply for null/err. */
    String run(String[] a) throws Exception {
        if (a.length == 0) throw new Reply("err usage: empty command", 2);
        switch (a[0]) {
            case "ping": need(a, 1, "ping"); return "ok pong";
            case "put": need(a, 4, "put MAP KEY VALUE");
                return showOld(map(a[1]).put(key(a[2]), value(a[3])));
            case "set": need(a, 4, "set MAP KEY VALUE");
                map(a[1]).set(key(a[2]), value(a[3])); return "ok";
            case "putstring": need(a, 4, "putstring MAP KEY TEXT");
                map(a[1]).set(key(a[2]), a[3]); return "ok";
            case "putttl": need(a, 5, "putttl MAP KEY VALUE TTL_MS");
                map(a[1]).set(key(a[2]), value(a[3]), Long.parseLong(a[4]), TimeUnit.MILLISECONDS); return "ok";
            case "get": need(a, 3, "get MAP KEY"); return show(map(a[1]).get(key(a[2])));
            case "remove": need(a, 3, "remove MAP KEY"); return showOld(map(a[1]).remove(key(a[2])));
            case "delete": need(a, 3, "delete MAP KEY"); map(a[1]).delete(key(a[2])); return "ok";
            case "evict": need(a, 3, "evict MAP KEY"); return "ok " + map(a[1]).evict(key(a[2]));
            case "evictall": need(a, 2, "evictall MAP"); map(a[1]).evictAll(); return "ok";
            case "clear": need(a, 2, "clear MAP"); map(a[1]).clear(); return "ok";
            // IMap.lock/unlock: owned by the serve loop's one thread, so an unlock later in the loop works.
            case "lock": need(a, 3, "lock MAP KEY"); map(a[1]).lock(key(a[2])); return "ok";
            case "unlock": need(a, 3, "unlock MAP KEY"); map(a[1]).unlock(key(a[2])); return "ok";
            case "destroy": need(a, 2, "destroy MAP"); map(a[1]).destroy(); return "ok";
            case "size": need(a, 2, "size MAP"); return "ok " + map(a[1]).size();
            case "containsKey": need(a, 3, "containsKey MAP KEY"); return "ok " + map(a[1]).containsKey(key(a[2]));
            case "partition": need(a, 2, "partition KEY");
                return "ok " + hz.getPartitionService().getPartition(key(a[1])).getPartitionId();
            case "owner": { // port of the member owning KEY's partition (-1 while unassigned)
                need(a, 2, "owner KEY");
                com.hazelcast.cluster.Member m = hz.getPartitionService().getPartition(key(a[1])).getOwner();
                return "ok " + (m == null ? -1 : m.getAddress().getPort());
            }
            case "mapconfig-evict": { // dynamic map config: LRU eviction at SIZE entries per partition
                need(a, 3, "mapconfig-evict MAP SIZE");
                com.hazelcast.config.MapConfig mc = new com.hazelcast.config.MapConfig(a[1]);
                mc.getEvictionConfig().setEvictionPolicy(com.hazelcast.config.EvictionPolicy.LRU)
                        .setMaxSizePolicy(com.hazelcast.config.MaxSizePolicy.PER_PARTITION)
                        .setSize(Integer.parseInt(a[2]));
                hz.getConfig().addMapConfig(mc);
                return "ok";
            }
            case "members": need(a, 1, "members"); return "ok " + hz.getCluster().getMembers().size();
            case "uuid": need(a, 1, "uuid"); return "ok " + hz.getLocalEndpoint().getUuid();
            case "listen": need(a, 2, "listen MAP");
                return "ok " + map(a[1]).addEntryListener(new Printer(a[1], events::add), true);
            case "listen-inval": need(a, 2, "listen-inval MAP");
                return "ok " + listenInvalidations(a[1]);
            case "unlisten": need(a, 3, "unlisten MAP ID");
                return "ok " + map(a[1]).removeEntryListener(UUID.fromString(a[2]));
            case "poll": {
                need(a, 2, "poll TIMEOUT_MS");
                String ev = events.poll(Long.parseLong(a[1]), TimeUnit.MILLISECONDS);
                return ev == null ? "ok none" : "ok " + ev;
            }
            default: throw new Reply("err usage: unknown command " + a[0], 2);
        }
    }

    /**
     * Registers a near-cache invalidation listener (Map.AddNearCacheInvalidationListener, flags 256) the
     * way the Java near cache does, through the client's internal listener service (smart routing: one
     * registration per member, localOnly). Events are queued as
     * "inval MAP KEY|null SOURCE_UUID PARTITION_UUID SEQUENCE" (one line per key of a batch).
     * Internal API of the 5.5.0 client: HazelcastClientProxy.client, ClientListenerService.
     */
    String listenInvalidations(String name) {
        com.hazelcast.client.impl.clientside.HazelcastClientInstanceImpl impl =
                ((com.hazelcast.client.impl.clientside.HazelcastClientProxy) hz).client;
        com.hazelcast.internal.serialization.SerializationService ss = impl.getSerializationService();
        com.hazelcast.client.impl.spi.impl.ListenerMessageCodec codec =
                new com.hazelcast.client.impl.spi.impl.ListenerMessageCodec() {
            public com.hazelcast.client.impl.protocol.ClientMessage encodeAddRequest(boolean localOnly) {
                return com.hazelcast.client.impl.protocol.codec.MapAddNearCacheInvalidationListenerCodec
                        .encodeRequest(name, 256, localOnly);
            }
            public UUID decodeAddResponse(com.hazelcast.client.impl.protocol.ClientMessage m) {
                return com.hazelcast.client.impl.protocol.codec.MapAddNearCacheInvalidationListenerCodec.decodeResponse(m);
            }
            public com.hazelcast.client.impl.protocol.ClientMessage encodeRemoveRequest(UUID id) {
                return com.hazelcast.client.impl.protocol.codec.MapRemoveEntryListenerCodec.encodeRequest(name, id);
            }
            public boolean decodeRemoveResponse(com.hazelcast.client.impl.protocol.ClientMessage m) {
                return com.hazelcast.client.impl.protocol.codec.MapRemoveEntryListenerCodec.decodeResponse(m);
            }
        };
        final class Handler extends com.hazelcast.client.impl.protocol.codec.MapAddNearCacheInvalidationListenerCodec
                .AbstractEventHandler implements com.hazelcast.client.impl.spi.EventHandler<com.hazelcast.client.impl.protocol.ClientMessage> {
            void one(com.hazelcast.internal.serialization.Data key, UUID src, UUID puuid, long seq) {
                Object k = key == null ? null : ss.toObject(key);
                events.add("inval " + name + " " + (k == null ? "null" : k) + " " + src + " " + puuid + " " + seq);
            }
            @Override
            public void handleIMapInvalidationEvent(com.hazelcast.internal.serialization.Data key, UUID src,
                                                    UUID puuid, long seq) {
                one(key, src, puuid, seq);
            }
            @Override
            public void handleIMapBatchInvalidationEvent(java.util.Collection<com.hazelcast.internal.serialization.Data> keys,
                    java.util.Collection<UUID> srcs, java.util.Collection<UUID> puuids, java.util.Collection<Long> seqs) {
                java.util.Iterator<UUID> s = srcs.iterator(), p = puuids.iterator();
                java.util.Iterator<Long> q = seqs.iterator();
                for (com.hazelcast.internal.serialization.Data k : keys) one(k, s.next(), p.next(), q.next());
            }
        }
        return impl.getListenerService().registerListener(codec, new Handler()).toString();
    }

    static String showOld(Object old) throws Reply {
        if (old == null) throw new Reply("null", 1);
        return show(old);
    }

    /** Formats entry events as "event MAP TYPE KEY VALUEHEX|-" (value of the event, old value for removals). */
    static final class Printer implements EntryAddedListener<String, Object>, EntryUpdatedListener<String, Object>,
            EntryRemovedListener<String, Object>, EntryEvictedListener<String, Object>,
            EntryExpiredListener<String, Object>, MapClearedListener, MapEvictedListener {
        final String map;
        final java.util.function.Consumer<String> out;
        Printer(String map, java.util.function.Consumer<String> out) { this.map = map; this.out = out; }
        void entry(String type, EntryEvent<String, Object> e) {
            Object v = e.getValue() != null ? e.getValue() : e.getOldValue();
            String vs = v instanceof byte[] ? (((byte[]) v).length == 0 ? "-" : hex((byte[]) v)) : v == null ? "-" : "type:" + v.getClass().getName();
            out.accept("event " + map + " " + type + " " + e.getKey() + " " + vs);
        }
        public void entryAdded(EntryEvent<String, Object> e) { entry("ADDED", e); }
        public void entryUpdated(EntryEvent<String, Object> e) { entry("UPDATED", e); }
        public void entryRemoved(EntryEvent<String, Object> e) { entry("REMOVED", e); }
        public void entryEvicted(EntryEvent<String, Object> e) { entry("EVICTED", e); }
        public void entryExpired(EntryEvent<String, Object> e) { entry("EXPIRED", e); }
        public void mapCleared(MapEvent e) { out.accept("event " + map + " CLEAR_ALL " + e.getNumberOfEntriesAffected()); }
        public void mapEvicted(MapEvent e) { out.accept("event " + map + " EVICT_ALL " + e.getNumberOfEntriesAffected()); }
    }

    /** Answers one line per stdin line until EOF or "quit". Never exits on a failed command. */
    void serve(BufferedReader in, PrintStream out) throws Exception {
        out.println("ok ready");
        out.flush();
        for (String line; (line = in.readLine()) != null; ) {
            line = line.trim();
            if (line.isEmpty()) continue;
            if (line.equals("quit")) { out.println("ok bye"); out.flush(); return; }
            out.println(answer(line.split("\\s+")));
            out.flush();
        }
    }

    String answer(String[] a) {
        try {
            return run(a);
        } catch (Reply r) {
            return r.getMessage();
        } catch (Exception e) {
            return "err " + e.getClass().getName() + ": " + String.valueOf(e.getMessage()).replace('\n', ' ');
        }
    }

    public static void main(String[] argv) throws Exception {
        String members = null, cluster = "dev";
        boolean smart = true, verbose = false;
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--members": members = argv[++i]; break;
                case "--cluster": cluster = argv[++i]; break;
                case "--unisocket": smart = false; break;
                case "--verbose": verbose = true; break;
                default: rest.add(argv[i]);
            }
        }
        if (rest.size() == 2 && rest.get(0).equals("property")) {
            // Default of a member property: "property CLIENT_HEARTBEAT_TIMEOUT_SECONDS" prints
            // "hazelcast.client.max.no.heartbeat.seconds=300" (ClusterProperty, no connection needed).
            Object p = Class.forName("com.hazelcast.spi.properties.ClusterProperty").getField(rest.get(1)).get(null);
            com.hazelcast.spi.properties.HazelcastProperty hp = (com.hazelcast.spi.properties.HazelcastProperty) p;
            System.out.println(hp.getName() + "=" + hp.getDefaultValue());
            return;
        }
        if (members == null || rest.isEmpty()) {
            System.err.println("usage: HzPeer --members H:P[,H:P...] [--cluster NAME] [--unisocket] [--verbose] "
                    + "serve | listen MAP | COMMAND ARGS...");
            System.exit(2);
        }
        if (!verbose) System.setProperty("hazelcast.logging.type", "none");
        ClientConfig cfg = new ClientConfig();
        cfg.setClusterName(cluster);
        cfg.setProperty("hazelcast.phone.home.enabled", "false");
        for (String m : members.split(",")) cfg.getNetworkConfig().addAddress(m.trim());
        cfg.getNetworkConfig().getClusterRoutingConfig().setRoutingMode(
                smart ? com.hazelcast.client.impl.connection.tcp.RoutingMode.ALL_MEMBERS
                      : com.hazelcast.client.impl.connection.tcp.RoutingMode.SINGLE_MEMBER);
        cfg.getConnectionStrategyConfig().getConnectionRetryConfig().setClusterConnectTimeoutMillis(30000);
        HazelcastInstance hz = HazelcastClient.newHazelcastClient(cfg);
        HzPeer peer = new HzPeer(hz);
        int exit = 0;
        try {
            String[] a = rest.toArray(new String[0]);
            BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            if (a[0].equals("serve")) {
                peer.serve(stdin, System.out);
            } else if (a[0].equals("listen") || a[0].equals("listen-inval")) {
                // One-shot listening: register as in serve mode, then print the queued events as they come.
                String r = peer.answer(a);
                if (!r.startsWith("ok")) throw new Reply(r, 2);
                System.out.println("ok listening");
                System.out.flush();
                Thread printer = new Thread(() -> {
                    try {
                        for (;;) {
                            String ev = peer.events.take();
                            synchronized (System.out) { System.out.println(ev); System.out.flush(); }
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
                printer.setDaemon(true);
                printer.start();
                while (stdin.readLine() != null) { /* run until stdin closes */ }
            } else {
                String r = peer.answer(a);
                if (r.startsWith("ok")) {
                    System.out.println(r.length() > 3 ? r.substring(3) : "");
                } else if (r.equals("null")) {
                    if (a[0].equals("get")) exit = 1; else System.out.println("null");
                } else {
                    System.err.println(r);
                    exit = 2;
                }
            }
        } catch (Reply r) {
            System.err.println(r.getMessage());
            exit = r.exit;
        } finally {
            hz.shutdown();
        }
        System.exit(exit);
    }
}
