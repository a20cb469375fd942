# needle node collection script, format needle.bundle/v1.
# Generated from collector/spec/node.yaml; runs under any POSIX sh (dash, busybox ash,
# bash --posix) and needs only the tools it calls plus sh builtins, cat, ls, mkdir,
# rm, sleep and tar. It writes a stream of concatenated tar archives to stdout (one per
# group of outputs, so whatever was sent before an interruption is complete) and
# nothing else; diagnostics go to stderr.
#
# To stop it early, send SIGTERM to its process group: the running command ends, the
# script sends what it collected (captures included) and exits 130.
#
# usage: sh -s -- [-c CAPTURE_SECONDS] [-p MAX_PACKETS] [-s SNAPLEN] [-n NODE_NETNS]
#                 [-w WINDOW_SECONDS] [-t PROBE_TARGETS -m MTU -M MTU_SOURCE]
#   -n NODE_NETNS: the node's host namespace is the named namespace NODE_NETNS (the lab);
#                  only namespaces attached to it by a veth are collected as its pods.
#   -w: the window's length when there are no captures (probes still need one)
#   -t: what to probe, words kind,address,port,peer (from the cluster's own objects; a
#       port of - is this node's own VXLAN dstport); -m an MTU the cluster objects state
#       and -M where from (the node's subnet.env wins; without either, its devices')

NEEDLE_CAPTURE_SECONDS=0
NEEDLE_MAX_PACKETS=2000
NEEDLE_SNAPLEN=200
NEEDLE_NODE_NETNS=
NEEDLE_WINDOW_SECONDS=0
NEEDLE_PROBE_TARGETS=
NEEDLE_PROBE_MTU=
NEEDLE_PROBE_MTU_SOURCE=
while [ $# -gt 0 ]; do
    case $1 in
        -c) NEEDLE_CAPTURE_SECONDS=$2; shift 2 ;;
        -p) NEEDLE_MAX_PACKETS=$2; shift 2 ;;
        -s) NEEDLE_SNAPLEN=$2; shift 2 ;;
        -n) NEEDLE_NODE_NETNS=$2; shift 2 ;;
        -w) NEEDLE_WINDOW_SECONDS=$2; shift 2 ;;
        -t) NEEDLE_PROBE_TARGETS=$2; shift 2 ;;
        -m) NEEDLE_PROBE_MTU=$2; shift 2 ;;
        -M) NEEDLE_PROBE_MTU_SOURCE=$2; shift 2 ;;
        --) shift ;;
        *) echo "needle: unknown argument: $1" >&2; exit 64 ;;
    esac
done
# Captures define the window; without them, probes get one of -w seconds.
[ "$NEEDLE_CAPTURE_SECONDS" -gt 0 ] && NEEDLE_WINDOW_SECONDS=$NEEDLE_CAPTURE_SECONDS
[ -n "$NEEDLE_PROBE_TARGETS" ] || [ "$NEEDLE_CAPTURE_SECONDS" -gt 0 ] || NEEDLE_WINDOW_SECONDS=0

W=$(mktemp -d "${TMPDIR:-/tmp}/needle.XXXXXX") || { echo "needle: cannot create a work directory" >&2; exit 70; }
NEEDLE_SEQ=0
needle_cleanup() {
    for _pidfile in "$W"/cap/*.pid; do
        [ -f "$_pidfile" ] && read -r _p <"$_pidfile" && kill -INT "$_p" 2>/dev/null
    done
    rm -rf "$W"
}
# On a signal, send what is already collected, then stop: a cut run still yields data.
needle_interrupted() {
    trap - INT TERM HUP
    needle_err "interrupted by a signal; sending what was collected"
    needle_stop_captures
    needle_probes_collect
    needle_emit
    needle_cleanup
    exit 130
}
trap needle_cleanup EXIT
trap needle_interrupted INT TERM HUP

mkdir -p "$W/out/_needle" "$W/ns" || exit 70

needle_err() {
    printf 'E\t%s\n' "$1" >>"$W/out/_needle/records"
    echo "needle: $1" >&2
}

needle_now() {
    read -r _up _idle </proc/uptime 2>/dev/null || _up=-
    NEEDLE_NOW=$_up
}

# Send everything collected since the last emit as one tar archive on stdout.
needle_emit() {
    if [ -s "$W/out/_needle/records" ]; then
        NEEDLE_SEQ=$((NEEDLE_SEQ + 1))
        mv "$W/out/_needle/records" "$W/out/_needle/records.$NEEDLE_SEQ"
    fi
    (cd "$W/out" && tar -cf - .) || echo "needle: tar failed" >&2
    rm -rf "$W/out"
    mkdir -p "$W/out/_needle"
}

# needle_watched SECONDS CMD [ARG...]: run CMD, killing it when it outlives SECONDS
# (and leaving $W/timedout). Always called inside a subshell: the shell's `wait PID`
# can miss a child's exit while traps are set (seen in dash 0.5.12 and busybox ash),
# and subshells run without the main shell's traps.
needle_watched() {
    _tmo=$1
    shift
    needle_exec "$@" &
    _cpid=$!
    (
        sleep "$_tmo" &
        echo "$!" >"$W/timer"
        wait "$!"
        : >"$W/timedout"
        kill -TERM "$_cpid" 2>/dev/null
        sleep 2
        kill -KILL "$_cpid" 2>/dev/null
    ) >/dev/null 2>&1 </dev/null &
    _wpid=$!
    wait "$_cpid"
    _rc=$?
    kill "$_wpid" 2>/dev/null
    _timer=
    # 2>/dev/null first: it must hide the redirection's own error (no timer file yet)
    read -r _timer 2>/dev/null <"$W/timer" && kill "$_timer" 2>/dev/null
    rm -f "$W/timer"
    return "$_rc"
}

# needle_rec ID SCOPE IFACE OUTPUT STDERR RC T0 T1 TIMEDOUT MISSING
needle_rec() {
    printf 'C\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$W/out/_needle/records"
}

# Become CMD, so that the pid the watchdog kills is the command itself; needle_*
# helpers (needle_in_ns) end in an exec of their own.
needle_exec() {
    case $1 in
        needle_*) "$@" ;;
        *) exec "$@" ;;
    esac
}

# needle_run ID SCOPE IFACE OUT TIMEOUT MAXBLOCKS CMD [ARG...]
# Runs CMD with stdout in OUT (cut at MAXBLOCKS 512-byte blocks by the file size limit)
# and stderr beside it; kills it after TIMEOUT seconds. Succeeds when CMD exited 0 and
# printed something, so a caller can fall back to another form.
needle_run() {
    _id=$1 _scope=$2 _if=$3 _out=$4 _tmo=$5 _blocks=$6
    shift 6
    _file="$W/out/$_out"
    case $_out in */*) mkdir -p "${_file%/*}" ;; esac
    _tool=$1
    case $_tool in
        needle_in_ns) _tool=$2 ;;
        needle_redacted*) _tool=awk ;;
    esac
    if ! command -v "$_tool" >/dev/null 2>&1; then
        needle_rec "$_id" "$_scope" "$_if" - - - - - 0 1
        return 127
    fi
    needle_now; _t0=$NEEDLE_NOW
    (ulimit -f "$_blocks" 2>/dev/null; needle_watched "$_tmo" "$@") \
        >"$_file" 2>"$_file.stderr" </dev/null
    _rc=$?
    needle_now; _t1=$NEEDLE_NOW
    _to=0
    if [ -e "$W/timedout" ]; then _to=1; rm -f "$W/timedout"; fi
    _errf="$_out.stderr"
    [ -s "$_file.stderr" ] || { rm -f "$_file.stderr"; _errf=-; }
    needle_rec "$_id" "$_scope" "$_if" "$_out" "$_errf" "$_rc" "$_t0" "$_t1" "$_to" 0
    [ "$_rc" -eq 0 ] && [ -s "$_file" ]
}

# needle_copy ID SCOPE OUT REDACT PATH: copy one file, with its secrets replaced when
# REDACT is 1 (cat is enough otherwise; no tool to be missing).
needle_copy() {
    if [ "$4" = 1 ]; then
        needle_run "$1" "$2" - "$3" 10 "$NEEDLE_DEFAULT_BLOCKS" needle_redacted "$5"
    else
        needle_run "$1" "$2" - "$3" 10 "$NEEDLE_DEFAULT_BLOCKS" cat "$5"
    fi
}

# needle_file ID SCOPE OUT REDACT PATH...: copy the first of the PATHs that exists.
needle_file() {
    _fid=$1 _fscope=$2 _fout=$3 _fredact=$4
    shift 4
    for _fpath in "$@"; do
        if [ -e "$_fpath" ]; then
            needle_copy "$_fid" "$_fscope" "$_fout" "$_fredact" "$_fpath"
            return
        fi
    done
    needle_rec "$_fid" "$_fscope" - - - - - - 0 1
    return 1
}

# needle_glob ID SCOPE OUTDIR REDACT PATTERN...: copy every regular file matching the
# first PATTERN that matches one (alternatives, as needle_file's paths).
needle_glob() {
    _gid=$1 _gscope=$2 _gout=$3 _gredact=$4
    shift 4
    _found=0
    for _gpattern in "$@"; do
        for _g in $_gpattern; do
            [ -f "$_g" ] || continue
            _found=1
            needle_copy "$_gid" "$_gscope" "$_gout/${_g##*/}" "$_gredact" "$_g"
        done
        [ "$_found" = 1 ] && return 0
    done
    needle_rec "$_gid" "$_gscope" - - - - - - 0 1
}

# needle_cmdlines ID SCOPE OUTDIR PATTERN...: the command line of every process whose
# name (/proc/PID/comm) matches a PATTERN, one argument a line in OUTDIR/PID.txt,
# redacted. Names, not paths: a k3s or RKE2 binary lives anywhere.
needle_cmdlines() {
    _cid=$1 _cscope=$2 _cout=$3
    shift 3
    _cfound=0
    for _comm in /proc/[0-9]*/comm; do
        _cname=
        read -r _cname <"$_comm" 2>/dev/null || continue
        for _cpat in "$@"; do
            case $_cname in $_cpat) ;; *) continue ;; esac
            _cproc=${_comm%/comm}
            _cproc=${_cproc#/proc/}
            _cfound=1
            needle_run "$_cid" "$_cscope" - "$_cout/$_cproc.txt" 10 "$NEEDLE_DEFAULT_BLOCKS" \
                needle_redacted_cmdline "/proc/$_cproc/cmdline"
            break
        done
    done
    [ "$_cfound" = 1 ] || needle_rec "$_cid" "$_cscope" - - - - - - 0 1
}

# ---- redaction -----------------------------------------------------------------------
# Node configuration (k3s/RKE2 config, their command lines) holds join tokens and
# storage keys. Their values are replaced by <redacted> on the node, before anything is
# written, wherever a key or flag name holds token, secret, passw, key, psk or
# credential: `name: value` (YAML, JSON), `name=value` (flags, env files), `--name value`
# (a flag and its next word or line), a YAML block under such a key, and the
# user:password of any URL. Over-redaction (a *-key-file path) is the accepted price.
# awk (POSIX, busybox or mawk) rather than sh: a line is scanned for every name in it.
NEEDLE_REDACT_AWK='function sens(n) { n = tolower(n); return n ~ /token|secret|passw|key|psk|credential/ }
function indent(s) { match(s, /^[ \t]*/); return RLENGTH }
function whole(s,    i, pre, tail, q) {
    i = indent(s); pre = substr(s, 1, i); s = substr(s, i + 1)
    if (substr(s, 1, 2) == "- ") { pre = pre "- "; s = substr(s, 3) }
    tail = ""
    if (s ~ /[ \t]\\$/) { tail = " \\"; sub(/[ \t]+\\$/, "", s) }
    if (match(s, /[],}]+$/) && RSTART > 1) { tail = substr(s, RSTART) tail; s = substr(s, 1, RSTART - 1) }
    q = substr(s, 1, 1)
    if ((q == "\"" || q == "\047") && length(s) > 1 && substr(s, length(s), 1) == q)
        return pre q "<redacted>" q tail
    return pre "<redacted>" tail
}
function flags(s,    n, w, i, out, f, changed, ind) {
    n = split(s, w, /[ \t]+/)
    changed = 0
    for (i = 1; i <= n; i++) {
        f = w[i]; gsub(/[]["\047,]/, "", f)
        if (f !~ /^--?[A-Za-z][A-Za-z0-9_.-]*$/ || !sens(f)) continue
        nf = w[i + 1]; gsub(/[]["\047,]/, "", nf)
        if (i < n && w[i + 1] != "\\" && nf !~ /^--/) {
            if (w[i + 1] != "<redacted>") { w[i + 1] = whole(w[i + 1]); changed = 1 }
        } else if (i == n || w[i + 1] == "\\") PENDING = 1
    }
    if (!changed) return s
    ind = indent(s); out = substr(s, 1, ind)
    for (i = 1; i <= n; i++) if (w[i] != "") out = out (out ~ /[^ \t]$/ ? " " : "") w[i]
    return out
}
BEGIN { BLOCK = -1; PENDING = 0 }
{
    line = $0
    if (BLOCK >= 0) {
        if (line ~ /^[ \t]*$/) { print line; next }
        i = indent(line)
        if (i > BLOCK || (i == BLOCK && substr(line, i + 1, 2) == "- ")) { print whole(line); next }
        BLOCK = -1
    }
    if (PENDING) {
        PENDING = 0
        f = line; gsub(/^[ \t]*(- )?["\047]?/, "", f)
        if (f !~ /^--/) { print whole(line); next }
    }
    gsub(/:\/\/[^\/@ \t"\047]+@/, "://<redacted>@", line)
    out = ""; s = line
    while (match(s, /[A-Za-z0-9_.-]+["\047]?[ \t]*[=:]/)) {
        head = substr(s, 1, RSTART + RLENGTH - 1)
        name = substr(s, RSTART, RLENGTH)
        sep = substr(name, length(name), 1)
        after = substr(s, RSTART + RLENGTH)
        sub(/["\047]?[ \t]*[=:]$/, "", name)
        out = out head; s = after
        if ((sep == ":" && substr(after, 1, 1) == "/") || !sens(name)) continue
        match(after, /^[ \t]*/); lead = substr(after, 1, RLENGTH); v = substr(after, RLENGTH + 1)
        c = substr(v, 1, 1)
        if (c == "\"" || c == "\047") {
            e = index(substr(v, 2), c)
            if (e == 0) { out = out lead c "<redacted>"; s = ""; break }
            out = out lead c "<redacted>" c; s = substr(v, e + 2); continue
        }
        if (sep == ":") {
            if (v ~ /^([|>][-+0-9]*|[{[])?[ \t]*(#.*)?$/) { BLOCK = indent(line); out = out after; s = ""; break }
            out = out lead "<redacted>"; s = ""; break
        }
        match(v, /^[^ \t"\047]*/)
        out = out lead "<redacted>"; s = substr(v, RLENGTH + 1)
    }
    print flags(out s)
}'

# needle_redacted FILE: FILE with secret values replaced.
needle_redacted() {
    exec awk "$NEEDLE_REDACT_AWK" "$1"
}

# needle_redacted_cmdline FILE: a /proc/PID/cmdline, one argument a line, redacted.
needle_redacted_cmdline() {
    tr '\000' '\n' <"$1" | awk "$NEEDLE_REDACT_AWK"
}

# needle_sysctl ID SCOPE OUT KEY...: `key = value` lines read from /proc/sys, no tool needed.
needle_sysctl() {
    _id=$1 _scope=$2 _out=$3
    shift 3
    needle_now; _t0=$NEEDLE_NOW
    for _pattern in "$@"; do
        for _f in /proc/sys/$_pattern; do
            [ -f "$_f" ] || continue
            _v=
            read -r _v <"$_f" 2>/dev/null || [ -n "$_v" ] || continue
            printf '%s = %s\n' "${_f#/proc/sys/}" "$_v"
        done
    done >"$W/out/$_out"
    needle_now
    needle_rec "$_id" "$_scope" - "$_out" - 0 "$_t0" "$NEEDLE_NOW" 0 0
}

# ---- network namespaces ------------------------------------------------------------

# The inode of the namespace a /proc/PID/ns/net link or an nsfs file points to.
needle_ns_inode_of_link() {  # `ls -l` line fields: ... PATH -> net:[INODE]
    _t=${1##*net:\[}
    NEEDLE_INODE=${_t%\]}
}

needle_self_ns() {
    _line=$(ls -l /proc/self/ns/net 2>/dev/null) || return 1
    needle_ns_inode_of_link "$_line"
    NEEDLE_SELF_INODE=$NEEDLE_INODE
}

# Find every network namespace on the machine, named ones first, then those of
# processes, deduplicated by inode. Per namespace, sh variables keyed by its inode
# (digits only, so safe in a name) hold its path, name and pids: no fork per entry.
needle_find_namespaces() {
    NEEDLE_NS_LIST=
    for _dir in /var/run/netns /run/netns /var/run/docker/netns; do
        [ -d "$_dir" ] || continue
        set -- "$_dir"/*
        [ -e "$1" ] || continue
        ls -iLd -- "$@" >"$W/ls" 2>/dev/null
        while read -r _ino _f; do
            case $_ino in ''|*[!0-9]*) continue ;; esac
            eval "_seen=\${ns_path_$_ino-}"
            [ -n "$_seen" ] && continue
            eval "ns_path_$_ino=\$_f"
            [ "$_dir" = /var/run/docker/netns ] || eval "ns_name_$_ino=\${_f##*/}"
            NEEDLE_NS_LIST="$NEEDLE_NS_LIST $_ino"
        done <"$W/ls"
    done
    ls -l /proc/[0-9]*/ns/net >"$W/ls" 2>/dev/null
    while read -r _line; do
        needle_ns_inode_of_link "$_line"
        _ino=$NEEDLE_INODE
        case $_ino in ''|*[!0-9]*) continue ;; esac
        _p=${_line%/ns/net*}
        _p=${_p##*/proc/}
        eval "_seen=\${ns_path_$_ino-}"
        if [ -z "$_seen" ]; then
            eval "ns_path_$_ino=/proc/\$_p/ns/net"
            NEEDLE_NS_LIST="$NEEDLE_NS_LIST $_ino"
        fi
        eval "ns_pids_$_ino=\"\${ns_pids_$_ino-} \$_p\""
    done <"$W/ls"
    rm -f "$W/ls"
}

# needle_in_ns CMD [ARG...]: run CMD inside the namespace $NS_PATH (named: $NS_NAME).
needle_in_ns() {
    if [ -n "$NS_NAME" ] && [ "$1" = ip ]; then
        shift
        exec ip -n "$NS_NAME" "$@"
    elif command -v nsenter >/dev/null 2>&1; then
        exec nsenter --net="$NS_PATH" "$@"
    elif [ -n "$NS_NAME" ]; then
        exec ip netns exec "$NS_NAME" "$@"
    fi
    echo "needle: cannot enter $NS_PATH: no nsenter on this node" >&2
    exit 127
}

# ---- devices by kind -------------------------------------------------------------------

# needle_discover_devices sets, from the node's own links and the kinds the spec names
# (the script knows no data plane by its device names):
#   NEEDLE_OVERLAY      devices of a kind in NEEDLE_OVERLAY_KINDS (tunnels between nodes)
#   NEEDLE_BRIDGES      bridges with a port of a kind in NEEDLE_POD_PORT_KINDS (pod bridges)
#   NEEDLE_ROUTED       such ports with no master and their peer in another namespace
#                       (routed pods), the underlay left out
#   NEEDLE_VXLAN_PORTS  each VXLAN device's dstport, once each
#   NEEDLE_UNDERLAY     the device the first VXLAN device with a `dev` rides on, else the
#                       device of the default route (IPv4, else IPv6)
# From `ip -d -o link show`: one line per device in every iproute2 version, `\` where -d
# breaks lines, the kind the first word of the third part. sh has no JSON parser; the
# JSON form is collected raw for the analyzer, which decides for itself.
needle_discover_devices() {
    NEEDLE_OVERLAY= NEEDLE_BRIDGES= NEEDLE_ROUTED= NEEDLE_VXLAN_PORTS= NEEDLE_UNDERLAY=
    _allbridges= _podmasters=" " _routed=
    ip -d -o link show >"$W/devs" 2>/dev/null
    while IFS= read -r _l; do
        _n=${_l#*: }
        _n=${_n%%:*}
        _n=${_n%%@*}
        _head=${_l%%\\*}
        _rest=${_l#*\\}
        # the kind is the first part after link/ that names one we look for: an
        # `altname` or XDP part may come before or after it, a `bridge_slave` after it
        _kind=
        _info=
        _segs=$_rest
        while [ -z "$_kind" ]; do
            case $_segs in *\\*) _segs=${_segs#*\\} ;; *) break ;; esac
            _seg=${_segs%%\\*}
            _seg=${_seg#"${_seg%%[! ]*}"}
            [ -n "$_seg" ] || continue
            case " bridge vxlan $NEEDLE_OVERLAY_KINDS $NEEDLE_POD_PORT_KINDS " in
                *" ${_seg%% *} "*) _kind=${_seg%% *}; _info=" $_seg " ;;
            esac
        done
        [ -n "$_kind" ] || continue
        _master=
        case $_head in *" master "*) _master=${_head#* master }; _master=${_master%% *} ;; esac
        case " $NEEDLE_OVERLAY_KINDS " in *" $_kind "*) NEEDLE_OVERLAY="$NEEDLE_OVERLAY $_n" ;; esac
        case $_kind in
            bridge) _allbridges="$_allbridges $_n" ;;
            vxlan)
                case $_info in *" dstport "*)
                    _p=${_info#* dstport }
                    _p=${_p%% *}
                    case " $NEEDLE_VXLAN_PORTS " in
                        *" $_p "*) ;;
                        *) NEEDLE_VXLAN_PORTS="$NEEDLE_VXLAN_PORTS $_p" ;;
                    esac
                    ;;
                esac
                if [ -z "$NEEDLE_UNDERLAY" ]; then
                    case $_info in *" dev "*) _d=${_info#* dev }; NEEDLE_UNDERLAY=${_d%% *} ;; esac
                fi
                ;;
        esac
        case " $NEEDLE_POD_PORT_KINDS " in *" $_kind "*)
            if [ -n "$_master" ]; then
                _podmasters="$_podmasters$_master "
            else
                # link-netns NAME or link-netnsid ID: the peer is in another namespace
                case $_rest in *" link-netns"*) _routed="$_routed $_n" ;; esac
            fi
            ;;
        esac
    done <"$W/devs"
    rm -f "$W/devs"
    # no VXLAN device with a dev: the default route's device (IPv4, else IPv6)
    for _family in -4 -6; do
        [ -z "$NEEDLE_UNDERLAY" ] || break
        _words=$(ip "$_family" -o route show default 2>/dev/null)
        set -f
        set -- $_words
        set +f
        while [ $# -gt 1 ]; do
            if [ "$1" = dev ]; then NEEDLE_UNDERLAY=$2; break; fi
            shift
        done
    done
    for _b in $_allbridges; do
        case $_podmasters in *" $_b "*) NEEDLE_BRIDGES="$NEEDLE_BRIDGES $_b" ;; esac
    done
    for _r in $_routed; do
        [ "$_r" = "$NEEDLE_UNDERLAY" ] || NEEDLE_ROUTED="$NEEDLE_ROUTED $_r"
    done
}

# In the lab every node is a named namespace on one machine: a namespace belongs to
# this node only if one of its veths has its peer here, and not through the uplink
# (the underlay switch is wired to every node's uplink and is nobody's pod).
# needle_node_peers: from this node's side, the namespaces its veths lead to.
needle_node_peers() {
    NEEDLE_PEER_NAMES=" "
    NEEDLE_PEER_IDS=" "
    ip -o link show type veth >"$W/links" 2>/dev/null
    while read -r _l; do
        _ifname=${_l#*: }
        _ifname=${_ifname%%:*}
        _ifname=${_ifname%%@*}
        [ "$_ifname" = "$NEEDLE_UNDERLAY" ] && continue
        # iproute2 names the peer namespace when it has a name, else prints its nsid
        case $_l in *" link-netns "*)
            _v=${_l##* link-netns }
            NEEDLE_PEER_NAMES="$NEEDLE_PEER_NAMES${_v%% *} " ;;
        esac
        case $_l in *" link-netnsid "*)
            _v=${_l##* link-netnsid }
            NEEDLE_PEER_IDS="$NEEDLE_PEER_IDS${_v%% *} " ;;
        esac
    done <"$W/links"
    ip netns list >"$W/links" 2>/dev/null
    while read -r _name _idword _id; do
        _id=${_id%)}
        case $NEEDLE_PEER_IDS in *" $_id "*) NEEDLE_PEER_NAMES="$NEEDLE_PEER_NAMES$_name " ;; esac
    done <"$W/links"
    rm -f "$W/links"
}

# An unnamed namespace (found through a process) is checked from its own side: one of
# its veths must lead to this node's namespace, not to the node's uplink.
needle_attached_from_inside() {
    _peer_id=
    needle_in_ns_sub ip netns list >"$W/links" 2>/dev/null
    while read -r _name _idword _id; do
        [ "$_name" = "$NEEDLE_NODE_NETNS" ] && _peer_id=${_id%)}
    done <"$W/links"
    [ -n "$_peer_id" ] || return 1
    needle_in_ns_sub ip -o link show type veth >"$W/links" 2>/dev/null
    _attached=1
    while read -r _l; do
        case $_l in
            *" link-netnsid $_peer_id"|*" link-netnsid $_peer_id "*) ;;
            *" link-netns $NEEDLE_NODE_NETNS"|*" link-netns $NEEDLE_NODE_NETNS "*) ;;
            *) continue ;;
        esac
        _peer_if=${_l#*: }
        _peer_if=${_peer_if%%:*}
        case $_peer_if in *@if*) _peer_if=${_peer_if##*@if} ;; *) continue ;; esac
        [ "$_peer_if" != "$NEEDLE_UPLINK_IFINDEX" ] && _attached=0
    done <"$W/links"
    rm -f "$W/links"
    return "$_attached"
}

needle_in_ns_sub() {
    (needle_in_ns "$@")
}

# needle_pick_namespaces: NEEDLE_PODS, the inodes of the pod namespaces this node's run
# collects (found once: the counters, the probes and the commands share the list).
needle_pick_namespaces() {
    NEEDLE_PODS=
    needle_self_ns || { needle_err "cannot read /proc/self/ns/net; pod namespaces skipped"; return; }
    needle_find_namespaces
    NEEDLE_UPLINK_IFINDEX=
    if [ -n "$NEEDLE_NODE_NETNS" ]; then
        read -r NEEDLE_UPLINK_IFINDEX </sys/class/net/"$NEEDLE_UNDERLAY"/ifindex 2>/dev/null
        needle_node_peers
    fi
    for _ino in $NEEDLE_NS_LIST; do
        [ "$_ino" = "$NEEDLE_SELF_INODE" ] && continue
        eval "NS_PATH=\$ns_path_$_ino; NS_NAME=\${ns_name_$_ino-}"
        if [ -n "$NEEDLE_NODE_NETNS" ]; then
            [ "$NS_NAME" = "$NEEDLE_NODE_NETNS" ] && continue
            if [ -n "$NS_NAME" ]; then
                case $NEEDLE_PEER_NAMES in *" $NS_NAME "*) ;; *) continue ;; esac
            else
                needle_attached_from_inside || continue
            fi
        fi
        NEEDLE_PODS="$NEEDLE_PODS $_ino"
    done
}

# needle_enter_ns INODE: NS_ID, NS_PATH and NS_NAME of a picked namespace.
needle_enter_ns() {
    eval "NS_PATH=\$ns_path_$1; NS_NAME=\${ns_name_$1-}"
    NS_ID="ns-$1"
}

needle_collect_namespaces() {
    _batch=0
    for _ino in $NEEDLE_PODS; do
        needle_enter_ns "$_ino"
        eval "_pids=\${ns_pids_$_ino-}"
        printf 'N\t%s\t%s\t%s\t%s\t%s\n' "$NS_ID" "$_ino" "${NS_NAME:--}" "$NS_PATH" \
            "${_pids:--}" >>"$W/out/_needle/records"
        needle_netns_commands
        # Send namespaces in batches: few tar processes, little lost to an interruption.
        _batch=$((_batch + 1))
        if [ "$_batch" -ge 8 ]; then
            needle_emit
            _batch=0
        fi
    done
    needle_emit
}

# ---- captures ----------------------------------------------------------------------

# needle_capture ROLE MAX OUT_PRE OUT_SUF EACH FILTER_PRE FILTER_SUF EXPAND
# Capture on the devices discovered for ROLE (overlay, bridge, underlay), at most MAX:
# into OUT_PRE<device>OUT_SUF for each (EACH=1), or into OUT_PRE on the first only.
# EXPAND names what the filter is made of, so it follows the node, not a data plane:
#   vxlan_dstport  FILTER_PRE<port>FILTER_SUF for each VXLAN device's dstport, or-ed
#   pod_net        FILTER_PRE<net>FILTER_SUF for each pod bridge's IPv4 network, or-ed
#   -              FILTER_PRE as it is
# A role with nothing to capture is recorded with the reason (a routed-pod node has no
# bridge, a host-gw node no VXLAN port), not as an error.
needle_capture() {
    _role=$1 _max=$2 _opre=$3 _osuf=$4 _each=$5 _fpre=$6 _fsuf=$7 _expand=$8
    # a skipped capture keeps its filter as the spec wrote it, to tell it from others
    _template=$_fpre$_fsuf
    [ "$_expand" = - ] || _template="$_fpre{$_expand}$_fsuf"
    case $_role in
        overlay) _devs=$NEEDLE_OVERLAY ;;
        bridge) _devs=$NEEDLE_BRIDGES ;;
        underlay) _devs=$NEEDLE_UNDERLAY ;;
        *) _devs= ;;
    esac
    if [ -z "$_devs" ]; then
        case $_role in
            overlay) _why="no overlay device (of kind $NEEDLE_OVERLAY_KINDS) on this node" ;;
            bridge)
                _why="no pod bridge (no bridge with a port of kind $NEEDLE_POD_PORT_KINDS) on this node"
                if [ -n "$NEEDLE_ROUTED" ]; then
                    set -f
                    set -- $NEEDLE_ROUTED
                    set +f
                    _why="no pod bridge: pods attach through routed veths with no master ($# on this node, e.g. $1); the overlay and underlay captures see their traffic"
                fi
                ;;
            underlay) _why="no underlay device (no VXLAN device with a dev, no default route)" ;;
            *) _why="unknown device role $_role" ;;
        esac
        needle_capture_skipped "$_role" "$_why" "$_template"
        return
    fi
    _filter=$_fpre$_fsuf
    case $_expand in
        vxlan_dstport)
            _vals=$NEEDLE_VXLAN_PORTS
            _why="no VXLAN device on this node: no encapsulation port to filter $_devs for"
            ;;
        pod_net)
            needle_pod_nets
            _vals=$NEEDLE_POD_NETS
            _why="no pod bridge with an IPv4 network on this node: no pod network to filter $_devs for"
            ;;
        *) _vals=- ;;
    esac
    if [ "$_vals" != - ]; then
        if [ -z "$_vals" ]; then
            needle_capture_skipped "$_role" "$_why" "$_template"
            return
        fi
        _filter=
        _terms=0
        for _v in $_vals; do
            _filter="$_filter${_filter:+ or }($_fpre$_v$_fsuf)"
            _terms=$((_terms + 1))
        done
        [ "$_terms" -gt 1 ] || _filter=$_fpre${_vals# }$_fsuf  # one term: no parentheses
    fi
    _count=0
    _over=
    for _dev in $_devs; do
        if [ "$_count" -ge "$_max" ]; then _over="$_over $_dev"; continue; fi
        _count=$((_count + 1))
        if [ "$_each" = 1 ]; then
            needle_capture_start "$_dev" "$_opre$_dev$_osuf" "${_filter:--}" "$_role"
        else
            needle_capture_start "$_dev" "$_opre" "${_filter:--}" "$_role"
            _max=0
        fi
    done
    [ -z "$_over" ] ||
        needle_capture_skipped "$_role" "not captured (at most $2 per role):$_over" "$_filter"
}

# The IPv4 networks of the pod bridges (10.244.1.1/24 on a bridge: 10.244.1.0/24): this
# node's pods, whose packets cross the underlay unencapsulated under host-gw or direct
# routing.
needle_pod_nets() {
    NEEDLE_POD_NETS=
    for _b in $NEEDLE_BRIDGES; do
        _words=$(ip -4 -o addr show dev "$_b" 2>/dev/null)
        set -f
        set -- $_words
        set +f
        while [ $# -gt 1 ]; do
            if [ "$1" = inet ] && needle_network "$2"; then
                case " $NEEDLE_POD_NETS " in
                    *" $NEEDLE_NET "*) ;;
                    *) NEEDLE_POD_NETS="$NEEDLE_POD_NETS $NEEDLE_NET" ;;
                esac
            fi
            shift
        done
    done
}

# needle_network A.B.C.D/LEN: NEEDLE_NET is its network, A.B.C.D masked to LEN bits
# (tcpdump refuses `net` with host bits set).
needle_network() {
    _len=${1#*/}
    _a=${1%/*}
    _o1=${_a%%.*}
    _a=${_a#*.}
    _o2=${_a%%.*}
    _a=${_a#*.}
    _o3=${_a%%.*}
    _o4=${_a#*.}
    for _o in "$_len" "$_o1" "$_o2" "$_o3" "$_o4"; do
        case $_o in ''|*[!0-9]*) return 1 ;; esac
        [ "$_o" -le 255 ] || return 1
    done
    [ "$_len" -le 32 ] || return 1
    _ip=$(( ((_o1 * 256 + _o2) * 256 + _o3) * 256 + _o4 ))
    _mask=0
    [ "$_len" -eq 0 ] || _mask=$(( (4294967295 << (32 - _len)) & 4294967295 ))
    _ip=$(( _ip & _mask ))
    NEEDLE_NET="$(( (_ip >> 24) & 255 )).$(( (_ip >> 16) & 255 )).$(( (_ip >> 8) & 255 )).$(( _ip & 255 ))/$_len"
}

needle_capture_skipped() {  # ROLE REASON FILTER
    printf -- '-\t-\t%s\t-\t%s\t%s\n' "${3:--}" "$1" "$2" >>"$W/captures"
}

# needle_capture_start IFACE OUTPUT FILTER ROLE: tcpdump in the background, bounded by
# packets (-c) and snap length (-s); needle_stop_captures ends the shared window.
needle_capture_start() {
    if ! command -v tcpdump >/dev/null 2>&1; then
        printf '%s\t%s\t%s\t%s\t%s\t-\n' "$1" "$2" "$3" "tcpdump is not installed" "$4" \
            >>"$W/captures"
        return
    fi
    if [ -z "$1" ] || [ ! -e "/sys/class/net/$1" ]; then
        printf '%s\t%s\t%s\t%s\t%s\t-\n' "${1:--}" "$2" "$3" "no interface ${1:-to capture on}" \
            "$4" >>"$W/captures"
        return
    fi
    printf '%s\t%s\t%s\t-\t%s\t-\n' "$1" "$2" "$3" "$4" >>"$W/captures"
    # --immediate-mode (tcpdump 4.6 on): each packet is handed over as it comes, not
    # when libpcap's buffer times out; stopped mid-buffer, tcpdump would count packets
    # it never wrote. Asked once; older tcpdumps do without it.
    if [ -z "${NEEDLE_TCPDUMP_NOW+set}" ]; then
        NEEDLE_TCPDUMP_NOW=
        case "$(tcpdump --help 2>&1)" in
            *immediate-mode*) NEEDLE_TCPDUMP_NOW=--immediate-mode ;;
        esac
    fi
    # -Z root: tcpdump would otherwise drop to its own user before creating the file
    # in our private (0700) work directory. A filter of "-" means none.
    (
        if [ "$3" != - ]; then
            tcpdump -n -U $NEEDLE_TCPDUMP_NOW -Z root -i "$1" -s "$NEEDLE_SNAPLEN" \
                -c "$NEEDLE_MAX_PACKETS" -w "$W/cap/$2" "$3" >/dev/null 2>"$W/cap/$2.stderr" \
                </dev/null &
        else
            tcpdump -n -U $NEEDLE_TCPDUMP_NOW -Z root -i "$1" -s "$NEEDLE_SNAPLEN" \
                -c "$NEEDLE_MAX_PACKETS" -w "$W/cap/$2" >/dev/null 2>"$W/cap/$2.stderr" \
                </dev/null &
        fi
        echo "$!" >"$W/cap/$2.pid"
        wait "$!"
        echo "$?" >"$W/cap/$2.rc"
    ) >/dev/null 2>&1 </dev/null &
}

needle_short_sleep() {
    sleep 0.1 2>/dev/null || sleep 1
}

needle_stop_captures() {
    [ -f "$W/captures" ] || return 0
    _old_ifs=$IFS
    while IFS='	' read -r _if _out _filter _error _crole _skip; do
        IFS=$_old_ifs
        _p=
        [ "$_error" = - ] && [ "$_skip" = - ] && read -r _p <"$W/cap/$_out.pid" 2>/dev/null
        [ -n "$_p" ] && kill -INT "$_p" 2>/dev/null
    done <"$W/captures"
    while IFS='	' read -r _if _out _filter _error _crole _skip; do
        IFS=$_old_ifs
        _rc=-
        if [ "$_error" = - ] && [ "$_skip" = - ]; then
            _p=
            read -r _p <"$W/cap/$_out.pid" 2>/dev/null
            _tries=0
            # The rc file never comes when a signal to our process group ended the
            # capture's wrapper too; then tcpdump's own exit is enough.
            while [ ! -s "$W/cap/$_out.rc" ] && [ "$_tries" -lt 50 ]; do
                [ -n "$_p" ] && ! kill -0 "$_p" 2>/dev/null && break
                needle_short_sleep
                _tries=$((_tries + 1))
            done
            read -r _rc <"$W/cap/$_out.rc" 2>/dev/null || _rc=-
            mkdir -p "$W/out/captures"
            [ -f "$W/cap/$_out" ] && mv "$W/cap/$_out" "$W/out/captures/$_out"
            [ -f "$W/cap/$_out.stderr" ] && mv "$W/cap/$_out.stderr" "$W/out/captures/$_out.stderr"
        fi
        printf 'P\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$_if" "$_out" "$_filter" "$_rc" "$_error" \
            "$_crole" "$_skip" >>"$W/out/_needle/records"
    done <"$W/captures"
    IFS=$_old_ifs
    rm -f "$W/captures"
}

# ---- the window: counters and probes ---------------------------------------------------

# needle_cs: NEEDLE_CS, the uptime in hundredths of a second (/proc/uptime has two
# decimals), for deadlines finer than a second.
needle_cs() {
    needle_now
    NEEDLE_CS=${NEEDLE_NOW%.*}${NEEDLE_NOW#*.}
    NEEDLE_CS=${NEEDLE_CS#"${NEEDLE_CS%%[!0]*}"}  # no leading zero: sh reads it as octal
    case $NEEDLE_CS in ''|*[!0-9]*) NEEDLE_CS=0 ;; esac
}

# needle_counters PHASE: the counters of the host namespace and of every pod namespace
# collected, into counters/PHASE/ (start before the probes, end after them).
needle_counters() {
    NEEDLE_PHASE=$1
    needle_counters_host
    for _cino in $NEEDLE_PODS; do
        needle_enter_ns "$_cino"
        needle_counters_netns
    done
}

# The MTU the probes measure, in order: this node's own configuration (flannel's
# subnet.env), an MTU the cluster objects state (-m), the MTU of the node's first overlay
# device, else of its underlay device (found by kind: the MTU its pods' traffic has).
needle_probe_mtu() {
    for _mf in /proc/1/root/run/flannel/subnet.env /run/flannel/subnet.env; do
        [ -r "$_mf" ] || continue
        while IFS='=' read -r _mk _mv; do
            [ "$_mk" = FLANNEL_MTU ] || continue
            if needle_plausible_mtu "$_mv"; then
                NEEDLE_PROBE_MTU=$_mv
                NEEDLE_PROBE_MTU_SOURCE="$_mf FLANNEL_MTU"
                return 0
            fi
        done <"$_mf"
    done
    needle_plausible_mtu "$NEEDLE_PROBE_MTU" && return 0
    set -f
    set -- $NEEDLE_OVERLAY
    set +f
    for _md in "$1" "$NEEDLE_UNDERLAY"; do
        [ -n "$_md" ] || continue
        _mv=
        read -r _mv <"/sys/class/net/$_md/mtu" 2>/dev/null
        if needle_plausible_mtu "$_mv"; then
            NEEDLE_PROBE_MTU=$_mv
            _mrole=underlay
            [ "$_md" = "$NEEDLE_UNDERLAY" ] || _mrole=overlay
            NEEDLE_PROBE_MTU_SOURCE="mtu of $_md ($_mrole device)"
            return 0
        fi
    done
    NEEDLE_PROBE_MTU=1500 NEEDLE_PROBE_MTU_SOURCE="no MTU found: Ethernet's"
}

needle_plausible_mtu() {
    case $1 in ''|*[!0-9]*) return 1 ;; esac
    [ "$1" -ge 576 ] && [ "$1" -le 65535 ]
}

# The one pod namespace probes start from: the first collected with a global IPv4
# address (a pod, not an empty namespace some agent keeps).
needle_probe_source_ns() {
    NEEDLE_PROBE_NS_ID=
    for _pino in $NEEDLE_PODS; do
        needle_enter_ns "$_pino"
        _words=$(needle_in_ns_sub ip -4 -o addr show scope global 2>/dev/null </dev/null)
        [ -n "$_words" ] || continue
        NEEDLE_PROBE_NS_ID=$NS_ID NEEDLE_PROBE_NS_PATH=$NS_PATH NEEDLE_PROBE_NS_NAME=$NS_NAME
        return 0
    done
    return 1
}

# Which tools the probes have: iputils ping sets DF (-M do), busybox's cannot; a UDP
# datagram goes through nc -u (busybox's nc has no -u), socat, or bash's /dev/udp,
# whichever the node has. </dev/null: the script itself arrives on stdin.
needle_probe_tools() {
    NEEDLE_PING= NEEDLE_PING_DF=0 NEEDLE_UDP_TOOL=
    if command -v ping >/dev/null 2>&1; then
        NEEDLE_PING=ping
        case $(ping -V 2>&1 </dev/null) in *iputils*) NEEDLE_PING_DF=1 ;; esac
    fi
    if command -v nc >/dev/null 2>&1; then
        case $(nc -h 2>&1 </dev/null) in *-u*) NEEDLE_UDP_TOOL=nc ;; esac
    fi
    if [ -z "$NEEDLE_UDP_TOOL" ] && command -v socat >/dev/null 2>&1; then NEEDLE_UDP_TOOL=socat; fi
    if [ -z "$NEEDLE_UDP_TOOL" ] && command -v bash >/dev/null 2>&1; then NEEDLE_UDP_TOOL=bash; fi
}

# Q: the settings this node probed with; R: one probe (see node_part.py for the fields).
needle_probes_start() {
    NEEDLE_PROBING=0
    [ -n "$NEEDLE_PROBE_TARGETS" ] || return 0
    NEEDLE_PROBING=1
    mkdir -p "$W/probe/out"
    needle_probe_mtu
    needle_probe_tools
    needle_probe_source_ns
    NEEDLE_PROBE_SIZES="small:$NEEDLE_PROBE_SMALL under-mtu:$((NEEDLE_PROBE_MTU - 28)) over-mtu:$((NEEDLE_PROBE_MTU - 27))"
    printf 'Q\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NEEDLE_PROBE_MTU" "$NEEDLE_PROBE_MTU_SOURCE" \
        "$NEEDLE_PROBE_SIZES" "${NEEDLE_PING:--}" "$NEEDLE_PING_DF" "${NEEDLE_UDP_TOOL:--}" \
        "${NEEDLE_PROBE_NS_ID:--}" >"$W/probe/records"
    ( needle_probe_runner ) >/dev/null 2>&1 </dev/null &
}

# needle_probe_rec FROM NETNS KIND ADDR PORT PEER SIZENAME SIZE DF TOOL OUT ERR RC T0 T1 MISSING CUT
needle_probe_rec() {
    printf 'R\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" \
        >>"$W/probe/records"
}

# Probes run in waves of at most NEEDLE_PROBE_PARALLEL, each ending by its deadline; a
# wave that could not end inside the window is not started, its probes recorded as cut.
# Runs in a subshell of its own (no traps there, so its `wait` is reliable).
needle_probe_runner() {
    needle_cs
    _pend=$((NEEDLE_WINDOW_START_CS + NEEDLE_WINDOW_SECONDS * 100))
    _inwave=0 _late=
    for _target in $NEEDLE_PROBE_TARGETS; do
        _kind=${_target%%,*} _rest=${_target#*,}
        _addr=${_rest%%,*} _rest=${_rest#*,}
        _port=${_rest%%,*} _peer=${_rest#*,}
        case $_kind in
            node-gateway|pod)
                for _from in $NEEDLE_PROBE_SOURCES; do
                    for _size in $NEEDLE_PROBE_SIZES; do
                        needle_probe_slot
                        needle_probe_ping "$_from" "$_kind" "$_addr" "$_peer" "${_size%%:*}" \
                            "${_size#*:}" &
                    done
                done
                ;;
            vxlan-port)
                needle_probe_slot
                needle_probe_udp "$_addr" "$_port" "$_peer" &
                ;;
        esac
    done
    wait
    : >"$W/probe/done"
}

# Before each probe: a full wave is waited for; a new wave starts only if it can end
# (NEEDLE_PROBE_DEADLINE later) inside the window, else _late says why not.
needle_probe_slot() {
    if [ "$_inwave" -ge "$NEEDLE_PROBE_PARALLEL" ]; then
        wait
        _inwave=0
    fi
    if [ "$_inwave" -eq 0 ] && [ -z "$_late" ]; then
        needle_cs
        [ $((NEEDLE_CS + NEEDLE_PROBE_DEADLINE * 100)) -le "$_pend" ] ||
            _late="no time left in the ${NEEDLE_WINDOW_SECONDS} s window"
    fi
    _inwave=$((_inwave + 1))
}

needle_probe_ping() {  # FROM KIND ADDR PEER SIZENAME SIZE
    _dir=host/probes _ns=-
    if [ "$1" = pod ]; then _dir="netns/${NEEDLE_PROBE_NS_ID:-none}/probes" _ns=${NEEDLE_PROBE_NS_ID:--}; fi
    _out="$_dir/$2-$3-$5.txt"
    if [ -n "$_late" ]; then
        needle_probe_rec "$1" "$_ns" "$2" "$3" - "$4" "$5" "$6" "$NEEDLE_PING_DF" "${NEEDLE_PING:--}" - - - - - 0 "$_late"
        return
    fi
    if [ "$1" = pod ] && [ -z "$NEEDLE_PROBE_NS_ID" ]; then
        needle_probe_rec "$1" - "$2" "$3" - "$4" "$5" "$6" "$NEEDLE_PING_DF" "${NEEDLE_PING:--}" - - - - - 0 \
            "no pod namespace with an IPv4 address on this node"
        return
    fi
    if [ -z "$NEEDLE_PING" ]; then
        needle_probe_rec "$1" "$_ns" "$2" "$3" - "$4" "$5" "$6" 0 ping - - - - - 1 -
        return
    fi
    mkdir -p "$W/probe/out/$_dir"
    # -W as well as -w: busybox waits 10 s for a first answer whatever -w says
    set -- "$@" -c "$NEEDLE_PROBE_COUNT" -i "$NEEDLE_PROBE_INTERVAL" -w "$NEEDLE_PROBE_DEADLINE" \
        -W "$NEEDLE_PROBE_DEADLINE" -s "$6"
    # iputils: numeric output, and DF set (busybox ping has neither option)
    [ "$NEEDLE_PING_DF" = 1 ] && set -- "$@" -n -M do
    _pfrom=$1 _pkind=$2 _paddr=$3 _ppeer=$4 _psname=$5 _psize=$6
    shift 6
    needle_cs; _t0=$NEEDLE_NOW
    if [ "$_pfrom" = pod ]; then
        (NS_PATH=$NEEDLE_PROBE_NS_PATH NS_NAME=$NEEDLE_PROBE_NS_NAME; needle_in_ns ping "$@" "$_paddr")
    else
        ping "$@" "$_paddr"
    fi >"$W/probe/out/$_out" 2>"$W/probe/out/$_out.stderr" </dev/null
    _rc=$?
    needle_now
    _err="$_out.stderr"
    [ -s "$W/probe/out/$_err" ] || { rm -f "$W/probe/out/$_err"; _err=-; }
    needle_probe_rec "$_pfrom" "$_ns" "$_pkind" "$_paddr" - "$_ppeer" "$_psname" "$_psize" \
        "$NEEDLE_PING_DF" ping "$_out" "$_err" "$_rc" "$_t0" "$NEEDLE_NOW" 0 -
}

needle_probe_udp() {  # ADDR PORT PEER
    _uaddr=$1 _uport=$2 _upeer=$3
    # a port of -: the objects name none; the peer listens where this node's VXLAN does
    if [ "$_uport" = - ]; then
        for _p in $NEEDLE_VXLAN_PORTS; do _uport=$_p; break; done
    fi
    if [ "$_uport" = - ]; then
        needle_probe_rec host - vxlan-port "$_uaddr" - "$_upeer" - - 0 "${NEEDLE_UDP_TOOL:--}" \
            - - - - - 0 "no VXLAN port: the cluster objects name none, this node has no VXLAN device"
        return
    fi
    _out="host/probes/vxlan-port-$_uaddr-$_uport.txt"
    if [ -n "$_late" ]; then
        needle_probe_rec host - vxlan-port "$_uaddr" "$_uport" "$_upeer" - - 0 \
            "${NEEDLE_UDP_TOOL:--}" - - - - - 0 "$_late"
        return
    fi
    if [ -z "$NEEDLE_UDP_TOOL" ]; then
        needle_probe_rec host - vxlan-port "$_uaddr" "$_uport" "$_upeer" - - 0 "nc socat bash" \
            - - - - - 1 -
        return
    fi
    mkdir -p "$W/probe/out/host/probes"
    needle_now; _t0=$NEEDLE_NOW
    case $NEEDLE_UDP_TOOL in
        nc) printf '%s' "$NEEDLE_PROBE_PAYLOAD" | nc -u -w "$NEEDLE_PROBE_DEADLINE" "$_uaddr" "$_uport" ;;
        socat) printf '%s' "$NEEDLE_PROBE_PAYLOAD" | socat -T "$NEEDLE_PROBE_DEADLINE" - "UDP:$_uaddr:$_uport" ;;
        bash) bash -c 'printf %s "$0" >"/dev/udp/$1/$2"' "$NEEDLE_PROBE_PAYLOAD" "$_uaddr" "$_uport" </dev/null ;;
    esac >"$W/probe/out/$_out" 2>"$W/probe/out/$_out.stderr"
    _rc=$?
    needle_now
    _err="$_out.stderr"
    [ -s "$W/probe/out/$_err" ] || { rm -f "$W/probe/out/$_err"; _err=-; }
    needle_probe_rec host - vxlan-port "$_uaddr" "$_uport" "$_upeer" - "${#NEEDLE_PROBE_PAYLOAD}" 0 \
        "$NEEDLE_UDP_TOOL" "$_out" "$_err" "$_rc" "$_t0" "$NEEDLE_NOW" 0 -
}

# Wait for the probe runner (every probe ends by its deadline; the bound here only
# guards against a tool that ignores its own), then hand its files and records over.
needle_probes_finish() {
    [ "$NEEDLE_PROBING" = 1 ] || return 0
    _tries=0
    while [ ! -e "$W/probe/done" ] && [ "$_tries" -lt $((NEEDLE_PROBE_DEADLINE * 10 + 50)) ]; do
        needle_short_sleep
        _tries=$((_tries + 1))
    done
    [ -e "$W/probe/done" ] || needle_err "probes still running after the window; sending what they wrote"
    needle_probes_collect
}

needle_probes_collect() {
    [ "${NEEDLE_PROBING:-0}" = 1 ] || return 0
    NEEDLE_PROBING=0
    # merged into what is there (tar, not cp: the script needs no tool beyond its header's)
    [ -d "$W/probe/out" ] && (cd "$W/probe/out" && tar -cf - .) | (cd "$W/out" && tar -xf -)
    [ -f "$W/probe/records" ] && cat "$W/probe/records" >>"$W/out/_needle/records"
    rm -rf "$W/probe"
}
