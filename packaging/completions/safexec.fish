# fish completion for safexec(1): the options, the accepted wrappers and the allowlisted tools;
# after the tool, the tool's own completion takes over.
function __safexec_needs_tool
    set -l words (commandline -opc)
    for w in $words[2..-1]
        switch $w
            case nohup nice
            case '*'
                return 1
        end
    end
    return 0
end

function __safexec_tool_args
    set -l words (commandline -opc)
    set -l i 2
    while test $i -le (count $words); and contains -- $words[$i] nohup nice
        set i (math $i + 1)
    end
    complete -C (string join ' ' -- $words[$i..-1] (commandline -ct))
end

complete -c safexec -f
complete -c safexec -n '__fish_is_first_arg' -l kill -x -d 'Stop a job safexec started' -a '(__fish_complete_pids)'
complete -c safexec -n '__fish_is_first_arg' -s h -l help -d 'Print the usage'
complete -c safexec -n '__fish_is_first_arg' -s v -l version -d 'Print the version'
complete -c safexec -n '__safexec_needs_tool' -a 'nohup' -d 'Ignore SIGHUP'
complete -c safexec -n '__safexec_needs_tool' -a 'nice' -d 'Lower the priority'
complete -c safexec -n '__safexec_needs_tool' -a 'wget curl cache-preload rg sha256sum cache-purge' -d 'Allowlisted tool'
complete -c safexec -n 'not __safexec_needs_tool' -a '(__safexec_tool_args)'
