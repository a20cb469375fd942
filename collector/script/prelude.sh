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
#   -n NODE_NETNS: the node's host namespace is the named namespace NODE_NETNS (the lab);
#                  only namespaces attached to it by a veth are collected as its pods.

NEEDLE_CAPTURE_SECONDS=0
NEEDLE_MAX_PACKETS=2000
NEEDLE_SNAPLEN=200
NEEDLE_NODE_NETNS=
while [ $# -gt 0 ]; do
    case $1 in
        -c) NEEDLE_CAPTURE_SECONDS=$2; shift 2 ;;
        -p) NEEDLE_MAX_PACKETS=$2; shift 2 ;;
        -s) NEEDLE_SNAPLEN=$2; shift 2 ;;
        -n) NEEDLE_NODE_NETNS=$2; shift 2 ;;
        --) shift ;;
        *) echo "needle: unknown argument: $1" >&2; exit 64 ;;
    esac
done

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
    read -r _timer <"$W/timer" 2>/dev/null && kill "$_timer" 2>/dev/null
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
    [ "$_tool" = needle_in_ns ] && _tool=$2
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

# needle_file ID SCOPE OUT PATH...: copy the first of the PATHs that exists (cat is
# enough; no tool to be missing).
needle_file() {
    _fid=$1 _fscope=$2 _fout=$3
    shift 3
    for _fpath in "$@"; do
        if [ -e "$_fpath" ]; then
            needle_run "$_fid" "$_fscope" - "$_fout" 10 "$NEEDLE_DEFAULT_BLOCKS" cat "$_fpath"
            return
        fi
    done
    needle_rec "$_fid" "$_fscope" - - - - - - 0 1
    return 1
}

# needle_glob ID SCOPE OUTDIR PATTERN: copy every regular file matching PATTERN.
needle_glob() {
    _found=0
    for _g in $4; do
        [ -f "$_g" ] || continue
        _found=1
        needle_run "$1" "$2" - "$3/${_g##*/}" 10 "$NEEDLE_DEFAULT_BLOCKS" cat "$_g"
    done
    [ "$_found" = 1 ] || needle_rec "$1" "$2" - - - - - - 0 1
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

needle_underlay_device() {
    NEEDLE_UNDERLAY=
    _words=$(ip -d -o link show flannel.1 2>/dev/null)
    set -- $_words
    while [ $# -gt 1 ]; do
        if [ "$1" = dev ]; then NEEDLE_UNDERLAY=$2; return 0; fi
        shift
    done
    _words=$(ip -o route show default 2>/dev/null)
    set -- $_words
    while [ $# -gt 1 ]; do
        if [ "$1" = dev ]; then NEEDLE_UNDERLAY=$2; return 0; fi
        shift
    done
    return 1
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

needle_collect_namespaces() {
    needle_self_ns || { needle_err "cannot read /proc/self/ns/net; pod namespaces skipped"; return; }
    needle_find_namespaces
    NEEDLE_UPLINK_IFINDEX=
    if [ -n "$NEEDLE_NODE_NETNS" ]; then
        needle_underlay_device
        read -r NEEDLE_UPLINK_IFINDEX </sys/class/net/"$NEEDLE_UNDERLAY"/ifindex 2>/dev/null
        needle_node_peers
    fi
    _batch=0
    for _ino in $NEEDLE_NS_LIST; do
        [ "$_ino" = "$NEEDLE_SELF_INODE" ] && continue
        eval "NS_PATH=\$ns_path_$_ino; NS_NAME=\${ns_name_$_ino-}; _pids=\${ns_pids_$_ino-}"
        if [ -n "$NEEDLE_NODE_NETNS" ]; then
            [ "$NS_NAME" = "$NEEDLE_NODE_NETNS" ] && continue
            if [ -n "$NS_NAME" ]; then
                case $NEEDLE_PEER_NAMES in *" $NS_NAME "*) ;; *) continue ;; esac
            else
                needle_attached_from_inside || continue
            fi
        fi
        NS_ID="ns-$_ino"
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

# needle_capture_start IFACE OUTPUT FILTER: tcpdump in the background, bounded by
# packets (-c) and snap length (-s); needle_stop_captures ends the shared window.
needle_capture_start() {
    if ! command -v tcpdump >/dev/null 2>&1; then
        printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "tcpdump is not installed" >>"$W/captures"
        return
    fi
    if [ -z "$1" ] || [ ! -e "/sys/class/net/$1" ]; then
        printf '%s\t%s\t%s\t%s\n' "${1:--}" "$2" "$3" "no interface ${1:-to capture on}" \
            >>"$W/captures"
        return
    fi
    printf '%s\t%s\t%s\t-\n' "$1" "$2" "$3" >>"$W/captures"
    # -Z root: tcpdump would otherwise drop to its own user before creating the file
    # in our private (0700) work directory. A filter of "-" means none.
    (
        if [ "$3" != - ]; then
            tcpdump -n -U -Z root -i "$1" -s "$NEEDLE_SNAPLEN" -c "$NEEDLE_MAX_PACKETS" \
                -w "$W/cap/$2" "$3" >/dev/null 2>"$W/cap/$2.stderr" </dev/null &
        else
            tcpdump -n -U -Z root -i "$1" -s "$NEEDLE_SNAPLEN" -c "$NEEDLE_MAX_PACKETS" \
                -w "$W/cap/$2" >/dev/null 2>"$W/cap/$2.stderr" </dev/null &
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
    while IFS='	' read -r _if _out _filter _error; do
        IFS=$_old_ifs
        _p=
        [ "$_error" = - ] && read -r _p <"$W/cap/$_out.pid" 2>/dev/null
        [ -n "$_p" ] && kill -INT "$_p" 2>/dev/null
    done <"$W/captures"
    while IFS='	' read -r _if _out _filter _error; do
        IFS=$_old_ifs
        _rc=-
        if [ "$_error" = - ]; then
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
        printf 'P\t%s\t%s\t%s\t%s\t%s\n' "$_if" "$_out" "$_filter" "$_rc" "$_error" \
            >>"$W/out/_needle/records"
    done <"$W/captures"
    IFS=$_old_ifs
    rm -f "$W/captures"
}
