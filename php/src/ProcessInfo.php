<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

/**
 * Reads a process's state from /proc/<pid>/stat, which every user may read (unless /proc is mounted
 * with hidepid). The start time (clock ticks since boot) tells a job from a later process that got
 * the same PID.
 */
final class ProcessInfo
{
    /** @var string */
    private $procRoot;

    public function __construct(string $procRoot = '/proc')
    {
        $this->procRoot = rtrim($procRoot, '/');
    }

    /**
     * [state letter, start time in clock ticks, command name] of a process, or null when it is gone.
     *
     * @return array{0:string,1:int,2:string}|null
     */
    public function stat(int $pid): ?array
    {
        if ($pid <= 0) {
            return null;
        }
        $text = @file_get_contents($this->procRoot . '/' . $pid . '/stat');
        if ($text === false || $text === '') {
            return null;
        }
        // "pid (comm) S ppid ..." — comm may itself contain ") ", so split at the last one.
        $open = strpos($text, '(');
        $close = strrpos($text, ') ');
        if ($open === false || $close === false || $close < $open) {
            return null;
        }
        $comm = substr($text, $open + 1, $close - $open - 1);
        $fields = explode(' ', substr($text, $close + 2));
        // Field 3 (state) is $fields[0]; field 22 (starttime) is $fields[19].
        if (count($fields) < 20 || !ctype_digit($fields[19])) {
            return null;
        }
        return [$fields[0], (int) $fields[19], $comm];
    }

    /**
     * Whether $pid runs (not a zombie) and, when $startTicks is given, is the same process that was
     * started then.
     */
    public function running(int $pid, ?int $startTicks = null): bool
    {
        $s = $this->stat($pid);
        if ($s === null || $s[0] === 'Z' || $s[0] === 'X' || $s[0] === 'x') {
            return false;
        }
        return $startTicks === null || $s[1] === $startTicks;
    }
}
